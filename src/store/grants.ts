// Consents, grants and authorization codes: what one approval produces. The tokens minted from a grant, and
// the atomic steps of minting them, are in tokens.ts.
import type { Consent, PrismaClient } from '../generated/prisma/client.ts';
import { addSeconds } from '../lib/clock.ts';
import { hashSecret, randomToken } from '../lib/crypto.ts';
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
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function grantStore(prisma: PrismaClient) {
  return {
    findConsent(userId: string, clientId: string, resourceServerId: string): Promise<Consent | null> {
      return prisma.consent.findUnique({
        where: { userId_clientId_resourceServerId: { userId, clientId, resourceServerId } },
      });
    },

    /** Remembers an approval; a later approval of other scopes widens the remembered set. */
    async saveConsent(
      userId: string,
      clientId: string,
      resourceServerId: string,
      scopes: string[],
    ): Promise<void> {
      await prisma.$transaction(async (tx) => {
        const key = { userId_clientId_resourceServerId: { userId, clientId, resourceServerId } };
        const existing = await tx.consent.findUnique({ where: key });
        const merged = [...new Set([...(existing?.scopes ?? []), ...scopes])];
        await tx.consent.upsert({
          where: key,
          create: { userId, clientId, resourceServerId, scopes: merged },
          update: { scopes: merged },
        });
      });
    },

    /** Starts a grant and its authorization code; returns the code (shown once, stored hashed). */
    async createAuthorizationCode(c: NewAuthorizationCode, ttl: number, now: Date): Promise<string> {
      const code = randomToken(32, TOKEN_PREFIX.code);
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
      });
      return code;
    },

    /** Revokes a grant and every token in it; false when there is no such grant. */
    async revokeGrant(grantId: string, reason: RevokeReason, now: Date): Promise<boolean> {
      if (!UUID.test(grantId)) return false; // ids are UUIDs; anything else names no grant
      return prisma.$transaction(async (tx) => {
        const grant = await tx.grant.findUnique({ where: { id: grantId }, select: { id: true } });
        if (!grant) return false;
        await revokeGrantTx(tx, grantId, reason, now);
        return true;
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
