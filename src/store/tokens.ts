// Access and refresh tokens, and the atomic steps of issuing them. The store reports facts (a code claimed or
// already spent, a refresh token claimed or already rotated); the grant handlers in src/oauth/grants/ decide
// what those facts mean, inside the same transaction, so single use holds under concurrency (RFC 9700 §4.14):
// of N requests presenting one code or refresh token, the conditional update lets exactly one claim it.
// The usual exchange and rotation run in one statement each, without an interactive transaction (token-paths.ts);
// replays, the reuse window and broken rules come here.

import type { StoreDatabase } from '../db/database.ts';
import type {
  AccessToken,
  AuthorizationCode,
  Client,
  Grant,
  PrismaClient,
  RefreshToken,
  ResourceServer,
  UpstreamLogin,
  User,
} from '../generated/prisma/client.ts';
import { addSeconds, systemClock } from '../lib/clock.ts';
import { hashSecret } from '../lib/crypto.ts';
import type { TokenTags } from '../lib/token-tags.ts';
import { auditGrant } from './audit.ts';
import { notifyChange } from './changes.ts';
import { accessTokenIssued } from './introspection.ts';
import { type TokenTagSource, tokenTagSource } from './settings.ts';
import { openKeptAnswer, sealKeptAnswer, TOKEN_PREFIX, tokenPaths } from './token-paths.ts';

export type { CodeExchange, CodeFacts, RefreshFacts, RefreshRotation } from './token-paths.ts';
export { TOKEN_PREFIX };

export type Tx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

/** Why a grant ended; recorded on the grant, never secret. */
export type RevokeReason =
  | 'user'
  | 'client'
  | 'operator'
  | 'code_replay'
  | 'refresh_replay'
  | 'invalid_exchange'
  /** Its upstream sign-in was revoked (upstream invalid_grant, expiry): spec federation §7. */
  | 'upstream_revoked'
  /** The operator unlinked the upstream identity it was approved under. */
  | 'upstream_unlinked';

export interface IssuedTokens {
  accessToken: string;
  refreshToken: string | undefined;
  scopes: string[];
  expiresIn: number;
}

/** What to mint for a grant: lifetimes in seconds; no refresh token when `refreshTokenTtl` is undefined. */
export interface TokenIssue {
  accessScopes: string[];
  refreshScopes: string[];
  /** The refresh token this rotation spends (null for the first pair). */
  parentRefreshId: string | null;
  accessTokenTtl: number;
  refreshTokenTtl: number | undefined;
}

export type CodeWithGrant = AuthorizationCode & { grant: Grant };
export type RefreshWithGrant = RefreshToken & { grant: Grant };

/** Presenting a code spends it: `claimed` the first time, `spent` every later time, `unknown` if never issued. */
export type CodeClaim =
  | { kind: 'unknown' }
  | { kind: 'spent'; code: CodeWithGrant }
  | { kind: 'claimed'; code: CodeWithGrant };

/** `rotated`: another request spent the token first, at `rotatedAt`; `revoked` if it has been revoked since. */
export type RefreshClaim = { kind: 'claimed' } | { kind: 'rotated'; rotatedAt: Date; revoked: boolean };

export type ActiveAccessToken = AccessToken & {
  grant: Grant & {
    user: User | null;
    client: Client;
    resourceServer: ResourceServer;
    /** The upstream sign-in behind the grant: what /introspect may show (never its tokens). */
    upstreamLogin: Pick<UpstreamLogin, 'provider' | 'claims' | 'revokedAt'> | null;
  };
};

/** The steps a grant handler takes inside one transaction. */
export interface TokenTransaction {
  claimAuthorizationCode(code: string, now: Date): Promise<CodeClaim>;
  findRefreshToken(token: string): Promise<RefreshWithGrant | null>;
  claimRefreshToken(id: string, now: Date): Promise<RefreshClaim>;
  issueTokens(grant: Grant, issue: TokenIssue, now: Date): Promise<IssuedTokens>;
  /**
   * Keeps the answer to the refresh that spent `refreshId` until `expiresAt`, sealed under a key derived from the
   * spent token (`presented`), so that only a holder of that token can read it back.
   */
  keepReplayAnswer(
    refreshId: string,
    presented: string,
    tokens: IssuedTokens,
    expiresAt: Date,
  ): Promise<void>;
  /** The answer kept for the refresh that spent `refreshId`, if still kept, unexpired and `presented` opens it. */
  findReplayAnswer(refreshId: string, presented: string, now: Date): Promise<IssuedTokens | undefined>;
  revokeGrant(grantId: string, reason: RevokeReason, now: Date): Promise<void>;
}

export async function revokeGrantTx(
  tx: Tx,
  grantId: string,
  reason: RevokeReason,
  now: Date,
  address?: string | null,
): Promise<void> {
  const ended = await tx.grant.updateMany({
    where: { id: grantId, revokedAt: null },
    data: { revokedAt: now, revokedReason: reason },
  });
  // Once per grant: a grant already ended is not ended again (README: Audit trail).
  if (ended.count > 0) await auditGrant(tx, grantId, { action: 'grant_revoked', reason }, now, address);
  await tx.accessToken.updateMany({ where: { grantId, revokedAt: null }, data: { revokedAt: now } });
  await tx.refreshToken.updateMany({ where: { grantId, revokedAt: null }, data: { revokedAt: now } });
  // Kept answers hold (sealed) tokens of this grant: none outlives it.
  await tx.refreshReplay.deleteMany({ where: { refreshToken: { grantId } } });
  await notifyChange(tx, 'grant');
}

async function issueTokensTx(
  tx: Tx,
  tags: TokenTags,
  grant: Grant,
  issue: TokenIssue,
  now: Date,
): Promise<IssuedTokens> {
  let refreshToken: string | undefined;
  let refreshId: string | null = null;
  if (issue.refreshTokenTtl !== undefined) {
    refreshToken = tags.mint(TOKEN_PREFIX.refresh);
    const row = await tx.refreshToken.create({
      data: {
        tokenHash: hashSecret(refreshToken),
        grantId: grant.id,
        parentId: issue.parentRefreshId,
        scopes: issue.refreshScopes,
        createdAt: now,
        expiresAt: addSeconds(now, issue.refreshTokenTtl),
      },
    });
    refreshId = row.id;
  }
  const accessToken = tags.mint(TOKEN_PREFIX.access);
  const accessTokenHash = hashSecret(accessToken);
  await tx.accessToken.create({
    data: {
      tokenHash: accessTokenHash,
      grantId: grant.id,
      refreshTokenId: refreshId,
      scopes: issue.accessScopes,
      createdAt: now,
      expiresAt: addSeconds(now, issue.accessTokenTtl),
    },
  });
  accessTokenIssued(accessTokenHash); // /introspect's negative cache (store/introspection.ts)
  return { accessToken, refreshToken, scopes: issue.accessScopes, expiresIn: issue.accessTokenTtl };
}

function tokenTransaction(tx: Tx, tags: TokenTags): TokenTransaction {
  return {
    async claimAuthorizationCode(code, now) {
      const codeHash = hashSecret(code);
      const claimed = await tx.authorizationCode.updateMany({
        where: { codeHash, usedAt: null },
        data: { usedAt: now },
      });
      const row = await tx.authorizationCode.findUnique({ where: { codeHash }, include: { grant: true } });
      if (!row) return { kind: 'unknown' };
      return { kind: claimed.count === 1 ? 'claimed' : 'spent', code: row };
    },

    findRefreshToken(token) {
      return tx.refreshToken.findUnique({
        where: { tokenHash: hashSecret(token) },
        include: { grant: true },
      });
    },

    async claimRefreshToken(id, now) {
      const claimed = await tx.refreshToken.updateMany({
        where: { id, rotatedAt: null },
        data: { rotatedAt: now },
      });
      if (claimed.count === 1) return { kind: 'claimed' };
      // The conditional update waited for the winner's commit, so this read sees its rotation.
      const current = await tx.refreshToken.findUnique({ where: { id } });
      return { kind: 'rotated', rotatedAt: current?.rotatedAt ?? now, revoked: !!current?.revokedAt };
    },

    issueTokens: (grant, issue, now) => issueTokensTx(tx, tags, grant, issue, now),

    async keepReplayAnswer(refreshId, presented, tokens, expiresAt) {
      const sealed = sealKeptAnswer(presented, tokens);
      await tx.refreshReplay.create({ data: { id: refreshId, sealed, scopes: tokens.scopes, expiresAt } });
    },

    async findReplayAnswer(refreshId, presented, now) {
      const row = await tx.refreshReplay.findUnique({ where: { id: refreshId } });
      if (!row) return undefined;
      if (row.expiresAt < now) {
        await tx.refreshReplay.deleteMany({ where: { id: refreshId } });
        return undefined;
      }
      return openKeptAnswer(presented, refreshId, row);
    },

    revokeGrant: (grantId, reason, now) => revokeGrantTx(tx, grantId, reason, now),
  };
}

/** A grant for a client acting on its own behalf (RFC 6749 §4.4): no user, no redirect URI. */
export interface NewClientGrant {
  clientId: string;
  resourceServerId: string;
  scopes: string[];
}

/**
 * `tags`: the database's token tag key, read before a transaction opens (never inside one: an embedded database has
 * one connection). The app reads it at start, so on a running server minting reads nothing more.
 */
export function tokenStore(db: StoreDatabase, tags: TokenTagSource = tokenTagSource(db.prisma)) {
  const { prisma } = db;
  return {
    /** Runs `fn` in one transaction; what it writes commits together, or not at all if it throws. */
    async transaction<T>(fn: (t: TokenTransaction) => Promise<T>): Promise<T> {
      // The key exists once any instance has started; systemClock only dates one created by a bare store.
      const key = await tags.load(systemClock.now());
      return prisma.$transaction((tx) => fn(tokenTransaction(tx, key)));
    },

    /** The one-statement happy paths of code exchange and refresh rotation. */
    ...tokenPaths(db, tags),

    /** Starts a grant without a user and mints its access token (and no refresh token). */
    async issueClientGrant(g: NewClientGrant, accessTokenTtl: number, now: Date): Promise<IssuedTokens> {
      const key = await tags.load(now);
      return prisma.$transaction(async (tx) => {
        const grant = await tx.grant.create({ data: { ...g, createdAt: now } });
        await auditGrant(tx, grant.id, { action: 'grant_created' }, now);
        const issue = { accessScopes: g.scopes, refreshScopes: [], parentRefreshId: null, accessTokenTtl };
        return issueTokensTx(tx, key, grant, { ...issue, refreshTokenTtl: undefined }, now);
      });
    },

    /** For introspection: the access token with its grant, user, client and resource server; null if unknown. */
    findAccessToken(token: string): Promise<ActiveAccessToken | null> {
      return prisma.accessToken.findUnique({
        where: { tokenHash: hashSecret(token) },
        include: {
          grant: {
            include: {
              user: true,
              client: true,
              resourceServer: true,
              upstreamLogin: { select: { provider: true, claims: true, revokedAt: true } },
            },
          },
        },
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
  };
}

export type TokenStore = ReturnType<typeof tokenStore>;
