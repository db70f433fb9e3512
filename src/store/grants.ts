// Consents, grants, authorization codes, access and refresh tokens: everything one authorization produces.
// Multi-step changes run in one transaction; code exchange and refresh rotation claim their row with a
// conditional update, so of N concurrent requests exactly one wins (DESIGN: Standards; RFC 9700 §4.14).
import type {
  AccessToken,
  AuthorizationCode,
  Client,
  Consent,
  Grant,
  PrismaClient,
  RefreshToken,
  ResourceServer,
  User,
} from '../generated/prisma/client.ts';
import { addSeconds } from '../lib/clock.ts';
import { hashSecret, randomToken } from '../lib/crypto.ts';
import { notifyChange } from './changes.ts';

type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

export const TOKEN_PREFIX = { code: 'lk_code_', access: 'lk_at_', refresh: 'lk_rt_' } as const;

export type RevokeReason =
  | 'user'
  | 'client'
  | 'operator'
  | 'code_replay'
  | 'refresh_replay'
  | 'invalid_exchange';

export interface NewAuthorizationCode {
  userId: string;
  clientId: string;
  resourceServerId: string;
  redirectUri: string;
  requestedResource: string | null;
  codeChallenge: string;
  scopes: string[];
}

export interface TokenLifetimes {
  accessTokenTtl: number;
  refreshTokenTtl: number;
  /** False when the client may not use the refresh_token grant. */
  issueRefreshToken: boolean;
}

export interface IssuedTokens {
  accessToken: string;
  refreshToken: string | undefined;
  scopes: string[];
  expiresIn: number;
}

export type CodeWithGrant = AuthorizationCode & { grant: Grant };
export type RefreshWithGrant = RefreshToken & { grant: Grant };

export type ExchangeResult =
  | { kind: 'issued'; tokens: IssuedTokens; grant: Grant }
  | { kind: 'unknown' }
  | { kind: 'replayed' }
  | { kind: 'rejected'; reason: string; error: 'invalid_grant' | 'invalid_target' };

export type RefreshResult =
  | { kind: 'issued'; tokens: IssuedTokens; grant: Grant }
  | { kind: 'unknown' }
  | { kind: 'replayed' }
  | { kind: 'rejected'; reason: string; error: 'invalid_grant' | 'invalid_target' | 'invalid_scope' };

export type ActiveAccessToken = AccessToken & {
  grant: Grant & { user: User; client: Client; resourceServer: ResourceServer };
};

async function mintTokens(
  tx: Tx,
  grant: Grant,
  accessScopes: string[],
  refreshScopes: string[],
  parentRefreshId: string | null,
  life: TokenLifetimes,
  now: Date,
): Promise<IssuedTokens> {
  let refreshToken: string | undefined;
  let refreshId: string | null = null;
  if (life.issueRefreshToken) {
    refreshToken = randomToken(32, TOKEN_PREFIX.refresh);
    const row = await tx.refreshToken.create({
      data: {
        tokenHash: hashSecret(refreshToken),
        grantId: grant.id,
        parentId: parentRefreshId,
        scopes: refreshScopes,
        createdAt: now,
        expiresAt: addSeconds(now, life.refreshTokenTtl),
      },
    });
    refreshId = row.id;
  }
  const accessToken = randomToken(32, TOKEN_PREFIX.access);
  await tx.accessToken.create({
    data: {
      tokenHash: hashSecret(accessToken),
      grantId: grant.id,
      refreshTokenId: refreshId,
      scopes: accessScopes,
      createdAt: now,
      expiresAt: addSeconds(now, life.accessTokenTtl),
    },
  });
  return { accessToken, refreshToken, scopes: accessScopes, expiresIn: life.accessTokenTtl };
}

async function revokeGrantTx(tx: Tx, grantId: string, reason: RevokeReason, now: Date): Promise<void> {
  await tx.grant.updateMany({
    where: { id: grantId, revokedAt: null },
    data: { revokedAt: now, revokedReason: reason },
  });
  await tx.accessToken.updateMany({ where: { grantId, revokedAt: null }, data: { revokedAt: now } });
  await tx.refreshToken.updateMany({ where: { grantId, revokedAt: null }, data: { revokedAt: now } });
  await notifyChange(tx, 'grant');
}

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

    /**
     * RFC 6749 §4.1.3 / RFC 9700 §2.1.1: claims the code (single use) and, when `check` finds nothing wrong,
     * mints tokens in the same transaction. A code presented again revokes everything issued from it
     * (RFC 6749 §4.1.2). A code that fails `check` is spent all the same.
     */
    async exchangeAuthorizationCode(
      code: string,
      check: (
        code: CodeWithGrant,
      ) => { reason: string; error: 'invalid_grant' | 'invalid_target' } | undefined,
      life: TokenLifetimes,
      now: Date,
    ): Promise<ExchangeResult> {
      const codeHash = hashSecret(code);
      return prisma.$transaction(async (tx): Promise<ExchangeResult> => {
        const claimed = await tx.authorizationCode.updateMany({
          where: { codeHash, usedAt: null },
          data: { usedAt: now },
        });
        const row = await tx.authorizationCode.findUnique({ where: { codeHash }, include: { grant: true } });
        if (!row) return { kind: 'unknown' };
        if (claimed.count === 0) {
          await revokeGrantTx(tx, row.grantId, 'code_replay', now);
          return { kind: 'replayed' };
        }
        const problem =
          row.expiresAt <= now
            ? { reason: 'authorization code expired', error: 'invalid_grant' as const }
            : check(row);
        if (problem || row.grant.revokedAt) {
          await revokeGrantTx(tx, row.grantId, 'invalid_exchange', now);
          return {
            kind: 'rejected',
            ...(problem ?? { reason: 'grant was revoked', error: 'invalid_grant' as const }),
          };
        }
        const tokens = await mintTokens(tx, row.grant, row.scopes, row.scopes, null, life, now);
        return { kind: 'issued', tokens, grant: row.grant };
      });
    },

    /**
     * RFC 6749 §6 with rotation (OAuth 2.1 §4.3.1): the presented refresh token is spent and a new one issued.
     * Presented again within `reuseWindow` seconds of its rotation (concurrent refreshes), it yields another
     * fresh pair; later, it revokes the whole grant.
     */
    async rotateRefreshToken(
      refreshToken: string,
      check: (
        rt: RefreshWithGrant,
      ) => { reason: string; error: 'invalid_grant' | 'invalid_target' | 'invalid_scope' } | undefined,
      accessScopes: (rt: RefreshWithGrant) => string[],
      life: TokenLifetimes,
      reuseWindow: number,
      now: Date,
    ): Promise<RefreshResult> {
      const tokenHash = hashSecret(refreshToken);
      return prisma.$transaction(async (tx): Promise<RefreshResult> => {
        const rt = await tx.refreshToken.findUnique({ where: { tokenHash }, include: { grant: true } });
        if (!rt) return { kind: 'unknown' };
        const problem = check(rt);
        if (problem) return { kind: 'rejected', ...problem };
        if (rt.revokedAt || rt.grant.revokedAt)
          return { kind: 'rejected', reason: 'refresh token was revoked', error: 'invalid_grant' };
        if (rt.expiresAt <= now)
          return { kind: 'rejected', reason: 'refresh token expired', error: 'invalid_grant' };
        const claimed = await tx.refreshToken.updateMany({
          where: { id: rt.id, rotatedAt: null },
          data: { rotatedAt: now },
        });
        if (claimed.count === 0) {
          // Already rotated: by a concurrent request (within the window) or a replay (after it).
          const current = await tx.refreshToken.findUnique({ where: { id: rt.id } });
          const rotatedAt = current?.rotatedAt ?? now;
          if (current?.revokedAt || now.getTime() - rotatedAt.getTime() > reuseWindow * 1000) {
            await revokeGrantTx(tx, rt.grantId, 'refresh_replay', now);
            return { kind: 'replayed' };
          }
        }
        const tokens = await mintTokens(tx, rt.grant, accessScopes(rt), rt.scopes, rt.id, life, now);
        return { kind: 'issued', tokens, grant: rt.grant };
      });
    },

    async revokeGrant(grantId: string, reason: RevokeReason, now: Date): Promise<void> {
      await prisma.$transaction((tx) => revokeGrantTx(tx, grantId, reason, now));
    },

    /** For introspection: the access token with its grant, user, client and resource server; null if unknown. */
    findAccessToken(token: string): Promise<ActiveAccessToken | null> {
      return prisma.accessToken.findUnique({
        where: { tokenHash: hashSecret(token) },
        include: { grant: { include: { user: true, client: true, resourceServer: true } } },
      });
    },

    findRefreshToken(token: string): Promise<RefreshWithGrant | null> {
      return prisma.refreshToken.findUnique({
        where: { tokenHash: hashSecret(token) },
        include: { grant: true },
      });
    },

    async revokeAccessToken(id: string, now: Date): Promise<void> {
      await prisma.$transaction(async (tx) => {
        await tx.accessToken.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: now } });
        await notifyChange(tx, 'token');
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
