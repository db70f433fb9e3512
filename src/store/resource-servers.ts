// Resource servers: the audiences tokens are bound to (RFC 8707) and the callers of /introspect (RFC 7662 §2.1).
import type { PrismaClient, ResourceServer } from '../generated/prisma/client.ts';
import { notifyChange } from './changes.ts';

export interface NewResourceServer extends Partial<UpstreamAccess> {
  uri: string;
  name: string;
  clientId: string;
  secretHash: string;
}

/** What a resource server may receive of the upstream sign-in behind a token (spec federation §2.2). */
export interface UpstreamAccess {
  /** /introspect adds the `upstream` member. */
  exposeUpstreamClaims: boolean;
  /** Provider ids whose upstream access token it may obtain by token exchange. */
  upstreamTokenProviders: string[];
  /** Authorizations for it need a session signed in through this provider. */
  requiredUpstreamProvider: string | null;
}

export type ResourceServerChanges = Partial<UpstreamAccess> & { name?: string };

export function resourceServerStore(prisma: PrismaClient) {
  return {
    create(r: NewResourceServer): Promise<ResourceServer> {
      return prisma.resourceServer.create({ data: r });
    },
    /** Creates or updates by URI (declarative configuration at start). */
    async upsert(r: NewResourceServer): Promise<ResourceServer> {
      const row = await prisma.resourceServer.upsert({ where: { uri: r.uri }, create: r, update: r });
      await notifyChange(prisma, 'resource_server');
      return row;
    },
    findByUri(uri: string): Promise<ResourceServer | null> {
      return prisma.resourceServer.findUnique({ where: { uri } });
    },
    findByClientId(clientId: string): Promise<ResourceServer | null> {
      return prisma.resourceServer.findUnique({ where: { clientId } });
    },
    list(): Promise<ResourceServer[]> {
      return prisma.resourceServer.findMany({ orderBy: { createdAt: 'asc' } });
    },
    count(): Promise<number> {
      return prisma.resourceServer.count();
    },
    async rotateSecret(uri: string, secretHash: string, at: Date): Promise<ResourceServer | null> {
      const r = await prisma.resourceServer.updateMany({
        where: { uri },
        data: { secretHash, secretRotatedAt: at },
      });
      if (r.count) await notifyChange(prisma, 'resource_server');
      return r.count ? prisma.resourceServer.findUnique({ where: { uri } }) : null;
    },
    /** Changes the name or the upstream access of a resource server; null when there is none at `uri`. */
    async update(uri: string, changes: ResourceServerChanges): Promise<ResourceServer | null> {
      const r = await prisma.resourceServer.updateMany({ where: { uri }, data: changes });
      if (r.count) await notifyChange(prisma, 'resource_server');
      return r.count ? prisma.resourceServer.findUnique({ where: { uri } }) : null;
    },
    async delete(uri: string): Promise<boolean> {
      const r = await prisma.resourceServer.deleteMany({ where: { uri } });
      if (r.count > 0) await notifyChange(prisma, 'resource_server');
      return r.count > 0;
    },
  };
}

export type ResourceServerStore = ReturnType<typeof resourceServerStore>;
