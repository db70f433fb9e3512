// Resource servers: the audiences tokens are bound to (RFC 8707) and the callers of /introspect (RFC 7662 §2.1).
import type { PrismaClient, ResourceServer } from '../generated/prisma/client.ts';
import { type AuditAction, type AuditBy, audit, OPERATOR } from './audit.ts';
import { notifyChange } from './changes.ts';
import type { Tx } from './tokens.ts';

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

/** The event of a change to the resource server at `uri` (its secret never: only that it was rotated). */
function auditChange(
  tx: Tx,
  action: AuditAction,
  uri: string,
  by: AuditBy,
  at: Date,
  detail?: Record<string, string>,
) {
  return audit(tx, { action, ...by, subject: uri, resource: uri, at, ...(detail && { detail }) });
}

/** Whether applying `r` would change nothing of `row`. */
function unchanged(row: ResourceServer, r: NewResourceServer): boolean {
  return (Object.keys(r) as (keyof NewResourceServer)[]).every(
    (k) => JSON.stringify(row[k] ?? null) === JSON.stringify(r[k] ?? null),
  );
}

export function resourceServerStore(prisma: PrismaClient) {
  return {
    create(r: NewResourceServer, by: AuditBy = OPERATOR, now = new Date()): Promise<ResourceServer> {
      return prisma.$transaction(async (tx) => {
        const row = await tx.resourceServer.create({ data: r });
        await auditChange(tx, 'resource_server_added', r.uri, by, now);
        return row;
      });
    },
    /**
     * Creates or updates by URI (declarative configuration at start); a declaration that changes nothing writes
     * nothing, so restarts add no audit events.
     */
    upsert(r: NewResourceServer, now = new Date()): Promise<ResourceServer> {
      return prisma.$transaction(async (tx) => {
        const existing = await tx.resourceServer.findUnique({ where: { uri: r.uri } });
        if (existing && unchanged(existing, r)) return existing;
        const row = await tx.resourceServer.upsert({ where: { uri: r.uri }, create: r, update: r });
        const change = existing ? 'resource_server_updated' : 'resource_server_added';
        await auditChange(tx, 'config_applied', r.uri, { actor: 'system' }, now, { change });
        await notifyChange(tx, 'resource_server');
        return row;
      });
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
    rotateSecret(uri: string, secretHash: string, at: Date, by = OPERATOR): Promise<ResourceServer | null> {
      return prisma.$transaction(async (tx) => {
        const r = await tx.resourceServer.updateMany({
          where: { uri },
          data: { secretHash, secretRotatedAt: at },
        });
        if (!r.count) return null;
        await auditChange(tx, 'resource_server_rotated', uri, by, at);
        await notifyChange(tx, 'resource_server');
        return tx.resourceServer.findUnique({ where: { uri } });
      });
    },
    /** Changes the name or the upstream access of a resource server; null when there is none at `uri`. */
    update(uri: string, changes: ResourceServerChanges, by = OPERATOR): Promise<ResourceServer | null> {
      return prisma.$transaction(async (tx) => {
        const r = await tx.resourceServer.updateMany({ where: { uri }, data: changes });
        if (!r.count) return null;
        const fields = Object.keys(changes).sort().join(' ');
        await auditChange(tx, 'resource_server_updated', uri, by, new Date(), { fields });
        await notifyChange(tx, 'resource_server');
        return tx.resourceServer.findUnique({ where: { uri } });
      });
    },
    delete(uri: string, by = OPERATOR, now = new Date()): Promise<boolean> {
      return prisma.$transaction(async (tx) => {
        const r = await tx.resourceServer.deleteMany({ where: { uri } });
        if (r.count === 0) return false;
        await auditChange(tx, 'resource_server_deleted', uri, by, now);
        await notifyChange(tx, 'resource_server');
        return true;
      });
    },
  };
}

export type ResourceServerStore = ReturnType<typeof resourceServerStore>;
