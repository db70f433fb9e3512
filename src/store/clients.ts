// OAuth clients of all three kinds: dynamically registered (RFC 7591), CIMD documents cached from their https
// client_id, and operator-created. Secrets are stored as SHA-256 hashes only.
import type { Client, ClientKind, Prisma, PrismaClient } from '../generated/prisma/client.ts';
import { notifyChange } from './changes.ts';

export type TokenEndpointAuthMethod = 'none' | 'client_secret_post' | 'client_secret_basic';

export interface NewClient {
  clientId: string;
  kind: ClientKind;
  name: string;
  redirectUris: string[];
  grantTypes: string[];
  responseTypes: string[];
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** SHA-256 of the secret (never the secret). */
  secretHash?: string | null;
  scope?: string | null;
  clientUri?: string | null;
  logoUri?: string | null;
  metadata?: Prisma.InputJsonValue | null;
  fetchedAt?: Date | null;
  freshUntil?: Date | null;
}

function data(c: NewClient) {
  return {
    ...c,
    secretHash: c.secretHash ?? null,
    scope: c.scope ?? null,
    clientUri: c.clientUri ?? null,
    logoUri: c.logoUri ?? null,
    metadata: c.metadata ?? undefined,
    fetchedAt: c.fetchedAt ?? null,
    freshUntil: c.freshUntil ?? null,
  };
}

export function clientStore(prisma: PrismaClient) {
  return {
    create(c: NewClient): Promise<Client> {
      return prisma.client.create({ data: data(c) });
    },

    /** Inserts or refreshes a cached CIMD client (keyed by its URL client_id). */
    upsertCimd(c: NewClient): Promise<Client> {
      const d = data(c);
      return prisma.client.upsert({ where: { clientId: c.clientId }, create: d, update: d });
    },

    findByClientId(clientId: string): Promise<Client | null> {
      return prisma.client.findUnique({ where: { clientId } });
    },

    list(kind?: ClientKind): Promise<Client[]> {
      return prisma.client.findMany({ where: kind ? { kind } : {}, orderBy: { createdAt: 'asc' } });
    },

    /** Deletes a client and, by cascade, its consents, grants, codes and tokens; its trace goes too. */
    async delete(clientId: string): Promise<boolean> {
      const [r] = await prisma.$transaction([
        prisma.client.deleteMany({ where: { clientId } }),
        prisma.clientTrace.deleteMany({ where: { clientId } }),
      ]);
      if (r.count > 0) await notifyChange(prisma, 'client');
      return r.count > 0;
    },

    async touch(id: string, at: Date): Promise<void> {
      await prisma.client.update({ where: { id }, data: { lastUsedAt: at } });
    },
  };
}

export type ClientStore = ReturnType<typeof clientStore>;
