// OAuth clients of all three kinds: dynamically registered (RFC 7591), CIMD documents cached from their https
// client_id, and operator-created. Secrets are stored as SHA-256 hashes only.
import type { Client, ClientKind, Prisma, PrismaClient } from '../generated/prisma/client.ts';
import { type AuditBy, audit, OPERATOR } from './audit.ts';
import { notifyChange } from './changes.ts';
import type { Tx } from './tokens.ts';

/** last_used_at is precise to this many seconds (it only feeds UNUSED_CLIENT_TTL, a minute at the least). */
export const TOUCH_INTERVAL_SECONDS = 60;

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

/** A client registers itself (DCR, CIMD); the operator registers the rest. */
async function auditRegistered(tx: Tx, c: NewClient, now: Date, address?: string): Promise<void> {
  await audit(tx, {
    action: 'client_registered',
    actor: c.kind === 'OPERATOR' ? 'operator' : `client:${c.clientId}`,
    subject: c.clientId,
    clientId: c.clientId,
    address,
    detail: { kind: c.kind },
    at: now,
  });
}

export function clientStore(prisma: PrismaClient) {
  return {
    /** Registers a client (`address`: the registering request's, for the audit trail). */
    create(c: NewClient, address?: string): Promise<Client> {
      return prisma.$transaction(async (tx) => {
        const client = await tx.client.create({ data: data(c) });
        await auditRegistered(tx, c, client.createdAt, address);
        return client;
      });
    },

    /** Inserts or refreshes a cached CIMD client (keyed by its URL client_id); its first fetch registers it. */
    upsertCimd(c: NewClient): Promise<Client> {
      const d = data(c);
      return prisma.$transaction(async (tx) => {
        const known = await tx.client.findUnique({ where: { clientId: c.clientId }, select: { id: true } });
        const client = await tx.client.upsert({ where: { clientId: c.clientId }, create: d, update: d });
        if (!known) await auditRegistered(tx, c, client.createdAt);
        return client;
      });
    },

    findByClientId(clientId: string): Promise<Client | null> {
      return prisma.client.findUnique({ where: { clientId } });
    },

    list(kind?: ClientKind): Promise<Client[]> {
      return prisma.client.findMany({ where: kind ? { kind } : {}, orderBy: { createdAt: 'asc' } });
    },

    /** Deletes a client and, by cascade, its consents, grants, codes and tokens; its trace goes too. */
    delete(clientId: string, by: AuditBy = OPERATOR, now = new Date()): Promise<boolean> {
      return prisma.$transaction(async (tx) => {
        const r = await tx.client.deleteMany({ where: { clientId } });
        if (r.count === 0) return false;
        await tx.clientTrace.deleteMany({ where: { clientId } });
        await audit(tx, { action: 'client_deleted', ...by, subject: clientId, clientId, at: now });
        await notifyChange(tx, 'client');
        return true;
      });
    },

    /**
     * Records a use at `at`, written only when the stored one is older than TOUCH_INTERVAL_SECONDS (or absent), so a
     * busy client's row is not rewritten on every request. Returns whether it wrote.
     */
    async touch(id: string, at: Date): Promise<boolean> {
      const stale = new Date(at.getTime() - TOUCH_INTERVAL_SECONDS * 1000);
      const r = await prisma.client.updateMany({
        where: { id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: stale } }] },
        data: { lastUsedAt: at },
      });
      return r.count > 0;
    },
  };
}

export type ClientStore = ReturnType<typeof clientStore>;
