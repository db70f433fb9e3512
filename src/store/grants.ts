// Consents, grants and authorization codes: what one approval produces. The tokens minted from a grant, and
// the atomic steps of minting them, are in tokens.ts.
import type { Client, Consent, PrismaClient, ResourceServer } from '../generated/prisma/client.ts';
import { addSeconds } from '../lib/clock.ts';
import { hashSecret } from '../lib/crypto.ts';
import { audit, auditGrant } from './audit.ts';
import { type TokenTagSource, tokenTagSource } from './settings.ts';
import { type RevokeReason, revokeGrantTx, TOKEN_PREFIX } from './tokens.ts';

export interface NewAuthorizationCode {
  userId: string;
  clientId: string;
  resourceServerId: string;
  redirectUri: string;
  requestedResource: string | null;
  codeChallenge: string;
  scopes: string[];
  /** The upstream sign-in of the approving session (spec federation §3.6); null for password sessions. */
  upstreamLoginId?: string | null;
  /** The approving request's address, for the audit trail. */
  address?: string | null;
}

/** One app a person approved, for one resource (the connected-apps page). */
export interface ConnectedApp {
  client: Client;
  resourceServer: ResourceServer;
  scopes: string[];
  approvedAt: Date;
  /** The newest token issued from its live grants; null when none is live. */
  lastUsedAt: Date | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function grantStore(prisma: PrismaClient, tags: TokenTagSource = tokenTagSource(prisma)) {
  return {
    findConsent(userId: string, clientId: string, resourceServerId: string): Promise<Consent | null> {
      return prisma.consent.findUnique({
        where: { userId_clientId_resourceServerId: { userId, clientId, resourceServerId } },
      });
    },

    /**
     * Remembers an approval made at `now` (from `address`); a later approval of other scopes widens the remembered
     * set.
     */
    async saveConsent(
      userId: string,
      clientId: string,
      resourceServerId: string,
      scopes: string[],
      now: Date,
      address?: string,
    ): Promise<void> {
      await prisma.$transaction(async (tx) => {
        const key = { userId_clientId_resourceServerId: { userId, clientId, resourceServerId } };
        const existing = await tx.consent.findUnique({ where: key });
        const merged = [...new Set([...(existing?.scopes ?? []), ...scopes])];
        await tx.consent.upsert({
          where: key,
          create: { userId, clientId, resourceServerId, scopes: merged, createdAt: now },
          update: { scopes: merged },
        });
        const client = await tx.client.findUnique({ where: { id: clientId }, select: { clientId: true } });
        const resource = await tx.resourceServer.findUnique({
          where: { id: resourceServerId },
          select: { uri: true },
        });
        await audit(tx, {
          action: 'consent',
          actor: `user:${userId}`,
          subject: userId,
          clientId: client?.clientId,
          resource: resource?.uri,
          address,
          detail: { scope: scopes.join(' ') },
          at: now,
        });
      });
    },

    /** Starts a grant and its authorization code; returns the code (shown once, stored hashed). */
    async createAuthorizationCode(c: NewAuthorizationCode, ttl: number, now: Date): Promise<string> {
      const code = (await tags.load(now)).mint(TOKEN_PREFIX.code);
      await prisma.$transaction(async (tx) => {
        const grant = await tx.grant.create({
          data: {
            userId: c.userId,
            clientId: c.clientId,
            resourceServerId: c.resourceServerId,
            scopes: c.scopes,
            redirectUri: c.redirectUri,
            upstreamLoginId: c.upstreamLoginId ?? null,
            createdAt: now,
          },
        });
        await tx.authorizationCode.create({
          data: {
            codeHash: hashSecret(code),
            grantId: grant.id,
            userId: c.userId,
            clientId: c.clientId,
            resourceServerId: c.resourceServerId,
            redirectUri: c.redirectUri,
            requestedResource: c.requestedResource,
            codeChallenge: c.codeChallenge,
            scopes: c.scopes,
            createdAt: now,
            expiresAt: addSeconds(now, ttl),
          },
        });
        await auditGrant(tx, grant.id, { action: 'grant_created' }, now, c.address);
      });
      return code;
    },

    /**
     * Revokes a grant and every token in it; false when there is no such grant. With `forgetConsent`, the person's
     * remembered approval of that client for that resource goes too, so the client's next request asks again.
     */
    async revokeGrant(
      grantId: string,
      reason: RevokeReason,
      now: Date,
      options: { forgetConsent?: boolean; address?: string } = {},
    ): Promise<boolean> {
      if (!UUID.test(grantId)) return false; // ids are UUIDs; anything else names no grant
      return prisma.$transaction(async (tx) => {
        const grant = await tx.grant.findUnique({ where: { id: grantId } });
        if (!grant) return false;
        await revokeGrantTx(tx, grantId, reason, now, options.address);
        if (options.forgetConsent && grant.userId) {
          const { userId, clientId, resourceServerId } = grant;
          await tx.consent.deleteMany({ where: { userId, clientId, resourceServerId } });
        }
        return true;
      });
    },

    /**
     * What a person has approved: one entry per client and resource with a remembered approval or a live grant,
     * with when it was approved and last used (the newest token issued from its live grants).
     */
    async listConnectedApps(userId: string): Promise<ConnectedApp[]> {
      const [consents, grants] = await Promise.all([
        prisma.consent.findMany({ where: { userId }, include: { client: true, resourceServer: true } }),
        prisma.grant.findMany({
          where: { userId, revokedAt: null },
          include: {
            client: true,
            resourceServer: true,
            accessTokens: { select: { createdAt: true }, orderBy: { createdAt: 'desc' }, take: 1 },
          },
        }),
      ]);
      const apps = new Map<string, ConnectedApp>();
      const key = (clientId: string, resourceServerId: string) => `${clientId} ${resourceServerId}`;
      for (const c of consents) {
        apps.set(key(c.clientId, c.resourceServerId), {
          client: c.client,
          resourceServer: c.resourceServer,
          scopes: c.scopes,
          approvedAt: c.createdAt,
          lastUsedAt: null,
        });
      }
      for (const g of grants) {
        const k = key(g.clientId, g.resourceServerId);
        const app = apps.get(k) ?? {
          client: g.client,
          resourceServer: g.resourceServer,
          scopes: g.scopes,
          approvedAt: g.createdAt,
          lastUsedAt: null,
        };
        const used = g.accessTokens[0]?.createdAt ?? g.createdAt;
        if (!app.lastUsedAt || used > app.lastUsedAt) app.lastUsedAt = used;
        apps.set(k, app);
      }
      return [...apps.values()].sort((a, b) => b.approvedAt.getTime() - a.approvedAt.getTime());
    },

    /**
     * Ends a person's approval of a client for a resource: revokes every live grant (and its tokens) and forgets
     * the remembered consent, in one transaction. False when there was nothing to end.
     */
    async revokeConnectedApp(
      userId: string,
      clientId: string,
      resourceServerId: string,
      now: Date,
      address?: string,
    ): Promise<boolean> {
      if (!UUID.test(clientId) || !UUID.test(resourceServerId)) return false;
      return prisma.$transaction(async (tx) => {
        const where = { userId, clientId, resourceServerId };
        const grants = await tx.grant.findMany({
          where: { ...where, revokedAt: null },
          select: { id: true },
        });
        for (const g of grants) await revokeGrantTx(tx, g.id, 'user', now, address);
        const forgotten = await tx.consent.deleteMany({ where });
        return grants.length > 0 || forgotten.count > 0;
      });
    },

    listGrants(filter: { userId?: string; clientId?: string } = {}) {
      return prisma.grant.findMany({
        where: { ...filter, revokedAt: null },
        include: { user: true, client: true, resourceServer: true },
        orderBy: { createdAt: 'asc' },
      });
    },
  };
}

export type GrantStore = ReturnType<typeof grantStore>;
