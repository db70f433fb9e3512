// The happy paths of /token in two round trips each, no interactive transaction (README: How it is built):
//   1. one read: the code or refresh token with the grant facts its rules need (nothing written);
//   2. one conditional write: a single statement whose CTEs spend the code or refresh token (UPDATE … WHERE still
//      unspent RETURNING) and insert the new tokens (and, for a refresh, the kept answer of the reuse window) only
//      from the row that UPDATE returned.
// The grant handler checks every rule in JS between the two, on the row statement 1 read. Why this keeps each
// guarantee:
// - Single use (RFC 9700 §2.1.1, §4.14): statement 2 claims with `used_at IS NULL` / `rotated_at IS NULL`; of N
//   concurrent statements on one row, Postgres lets exactly one update it (the others wait for its commit, re-check
//   the condition and return nothing). A caller whose claim returns nothing takes the transactional path in
//   tokens.ts, which sees the spent row and applies the replay rules (code replay revokes the grant; a refresh
//   inside the reuse window gets the kept answer, which the winner's same statement already committed).
// - Nothing half-written: statement 1 writes nothing, and statement 2 is one statement, so it commits whole or not
//   at all (a crash or lost connection between or during them leaves the code or refresh token unspent, or spent
//   with its tokens and kept answer). There is no state "spent, no tokens" to reason about on this path.
// - The rules read in statement 1 cannot change under it except by spending (checked by the claim) or by revoking
//   the token or its grant, which statement 2 re-checks in its own snapshot. A revocation racing statement 2 that
//   commits later still ends the new tokens: /introspect and refresh both refuse tokens of a revoked grant.
// - Issuing tokens changes nothing another instance caches, so no change notification is sent (as before).
import { randomUUID } from 'node:crypto';
import { Prisma, type PrismaClient } from '../generated/prisma/client.ts';
import { addSeconds } from '../lib/clock.ts';
import { hashSecret } from '../lib/crypto.ts';
import { sealWithSecret } from '../lib/seal.ts';
import type { TokenTags } from '../lib/token-tags.ts';
import { accessTokenIssued } from './introspection.ts';
import type { TokenTagSource } from './settings.ts';
import type { IssuedTokens, TokenIssue } from './tokens.ts';

/** Every token is `prefix + 43 random characters + 8-character keyed tag` (src/lib/token-tags.ts). */
export const TOKEN_PREFIX = { code: 'lk_code_', access: 'lk_at_', refresh: 'lk_rt_' } as const;

type Raw = Pick<PrismaClient, '$queryRaw'>;

/** What the code exchange rules need to know about a presented code (RFC 6749 §4.1.3). */
export interface CodeFacts {
  id: string;
  grantId: string;
  clientId: string;
  resourceServerId: string;
  redirectUri: string;
  codeChallenge: string;
  scopes: string[];
  expiresAt: Date;
  usedAt: Date | null;
  grant: { revokedAt: Date | null };
}

/** What the refresh rules need to know about a presented refresh token (RFC 6749 §6). */
export interface RefreshFacts {
  id: string;
  grantId: string;
  scopes: string[];
  expiresAt: Date;
  rotatedAt: Date | null;
  revokedAt: Date | null;
  grant: { clientId: string; resourceServerId: string; revokedAt: Date | null };
}

/** Timestamps go in as ISO text cast to `timestamp`, which keeps UTC whatever the session's TimeZone is. */
const ts = (d: Date) => d.toISOString();

interface Minted {
  tokens: IssuedTokens;
  accessId: string;
  accessHash: string;
  refreshId: string | null;
  refreshHash: string | null;
}

function mint(tags: TokenTags, issue: TokenIssue): Minted {
  const accessToken = tags.mint(TOKEN_PREFIX.access);
  const refreshToken = issue.refreshTokenTtl === undefined ? undefined : tags.mint(TOKEN_PREFIX.refresh);
  return {
    tokens: { accessToken, refreshToken, scopes: issue.accessScopes, expiresIn: issue.accessTokenTtl },
    accessId: randomUUID(),
    accessHash: hashSecret(accessToken),
    refreshId: refreshToken === undefined ? null : randomUUID(),
    refreshHash: refreshToken === undefined ? null : hashSecret(refreshToken),
  };
}

/** The minted tokens when the statement wrote them; /introspect's negative cache forgets the hash (introspection.ts). */
function issued(claimed: boolean, m: Minted): IssuedTokens | undefined {
  if (!claimed) return undefined;
  accessTokenIssued(m.accessHash);
  return m.tokens;
}

/**
 * The CTEs `new_refresh` and `new_access` that insert the minted tokens for the grant of the row `claimed` returned
 * (nothing when it returned none); `parent` is the new refresh token's parent_id, a column of `claimed` or NULL.
 */
function newTokens(m: Minted, issue: TokenIssue, now: Date, parent: Prisma.Sql): Prisma.Sql {
  const at = ts(now);
  const accessExpires = ts(addSeconds(now, issue.accessTokenTtl));
  const refreshExpires = ts(addSeconds(now, issue.refreshTokenTtl ?? 0));
  return Prisma.sql`new_refresh AS (
      INSERT INTO refresh_tokens (id, token_hash, grant_id, parent_id, scopes, created_at, expires_at)
      SELECT ${m.refreshId}::uuid, ${m.refreshHash}, grant_id, ${parent}, ${issue.refreshScopes}::text[],
             ${at}::timestamp(3), ${refreshExpires}::timestamp(3)
      FROM claimed WHERE ${m.refreshId}::uuid IS NOT NULL
      RETURNING id
    ), new_access AS (
      INSERT INTO access_tokens (id, token_hash, grant_id, refresh_token_id, scopes, created_at, expires_at)
      SELECT ${m.accessId}::uuid, ${m.accessHash}, grant_id, (SELECT id FROM new_refresh),
             ${issue.accessScopes}::text[], ${at}::timestamp(3), ${accessExpires}::timestamp(3)
      FROM claimed
    )`;
}

export async function findCodeFacts(db: Raw, code: string): Promise<CodeFacts | null> {
  const rows = await db.$queryRaw<(Omit<CodeFacts, 'grant'> & { grantRevokedAt: Date | null })[]>`
    SELECT c.id::text AS "id", c.grant_id::text AS "grantId", c.client_id::text AS "clientId",
           c.resource_server_id::text AS "resourceServerId", c.redirect_uri AS "redirectUri",
           c.code_challenge AS "codeChallenge", coalesce(c.scopes, '{}') AS "scopes",
           c.expires_at AS "expiresAt", c.used_at AS "usedAt", g.revoked_at AS "grantRevokedAt"
    FROM authorization_codes c JOIN grants g ON g.id = c.grant_id
    WHERE c.code_hash = ${hashSecret(code)}`;
  const row = rows[0];
  if (!row) return null;
  const { grantRevokedAt, ...facts } = row;
  return { ...facts, grant: { revokedAt: grantRevokedAt } };
}

/**
 * Spends the code and issues its first tokens in one statement. Undefined when the code was spent (or its grant
 * revoked) since it was read: the caller then takes the transactional path, which applies the replay rules.
 */
export async function exchangeCodeOnce(
  db: Raw,
  tags: TokenTags,
  code: CodeFacts,
  issue: TokenIssue,
  now: Date,
): Promise<IssuedTokens | undefined> {
  const m = mint(tags, issue);
  const at = ts(now);
  const rows = await db.$queryRaw<{ claimed: number }[]>`
    WITH claimed AS (
      UPDATE authorization_codes c SET used_at = ${at}::timestamp(3)
      WHERE c.id = ${code.id}::uuid AND c.used_at IS NULL
        AND EXISTS (SELECT 1 FROM grants g WHERE g.id = c.grant_id AND g.revoked_at IS NULL)
      RETURNING c.grant_id
    ), ${newTokens(m, issue, now, Prisma.sql`NULL`)}
    SELECT count(*)::int AS claimed FROM claimed`;
  return issued(rows[0]?.claimed === 1, m);
}

export async function findRefreshFacts(db: Raw, token: string): Promise<RefreshFacts | null> {
  type Row = Omit<RefreshFacts, 'grant'> & {
    clientId: string;
    resourceServerId: string;
    grantRevokedAt: Date | null;
  };
  const rows = await db.$queryRaw<Row[]>`
    SELECT r.id::text AS "id", r.grant_id::text AS "grantId", coalesce(r.scopes, '{}') AS "scopes",
           r.expires_at AS "expiresAt", r.rotated_at AS "rotatedAt", r.revoked_at AS "revokedAt",
           g.client_id::text AS "clientId", g.resource_server_id::text AS "resourceServerId",
           g.revoked_at AS "grantRevokedAt"
    FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id
    WHERE r.token_hash = ${hashSecret(token)}`;
  const row = rows[0];
  if (!row) return null;
  const { clientId, resourceServerId, grantRevokedAt, ...facts } = row;
  return { ...facts, grant: { clientId, resourceServerId, revokedAt: grantRevokedAt } };
}

/** The reuse window's kept answer (RFC 9700 §4.14.2), sealed under the presented token (src/lib/seal.ts). */
export interface KeepAnswer {
  presented: string;
  until: Date;
}

/**
 * Spends the refresh token and issues the next pair in one statement, keeping the answer for the reuse window
 * when `keep` is given. Undefined when the token was rotated or revoked (or its grant revoked) since it was read:
 * the caller then takes the transactional path, which applies the reuse-window and replay rules.
 */
export async function rotateRefreshOnce(
  db: Raw,
  tags: TokenTags,
  rt: RefreshFacts,
  issue: TokenIssue,
  keep: KeepAnswer | undefined,
  now: Date,
): Promise<IssuedTokens | undefined> {
  const m = mint(tags, issue);
  const at = ts(now);
  // Sealed exactly as keepReplayAnswer in tokens.ts does, so findReplayAnswer opens either.
  const sealed = keep ? sealWithSecret(keep.presented, rt.id, JSON.stringify(m.tokens)) : null;
  const keepUntil = keep ? ts(keep.until) : null;
  const rows = await db.$queryRaw<{ claimed: number }[]>`
    WITH claimed AS (
      UPDATE refresh_tokens r SET rotated_at = ${at}::timestamp(3)
      WHERE r.id = ${rt.id}::uuid AND r.rotated_at IS NULL AND r.revoked_at IS NULL
        AND EXISTS (SELECT 1 FROM grants g WHERE g.id = r.grant_id AND g.revoked_at IS NULL)
      RETURNING r.id, r.grant_id
    ), ${newTokens(m, issue, now, Prisma.sql`id`)}, kept AS (
      INSERT INTO refresh_replays (id, sealed, expires_at)
      SELECT id, ${sealed}, ${keepUntil}::timestamp(3) FROM claimed WHERE ${sealed}::text IS NOT NULL
    )
    SELECT count(*)::int AS claimed FROM claimed`;
  return issued(rows[0]?.claimed === 1, m);
}

/** The store's view of these paths (spread into tokenStore). */
export function tokenPaths(db: Raw, tags: TokenTagSource) {
  return {
    /** The code with what its exchange rules need; nothing is written (statement 1). */
    findCode: (code: string): Promise<CodeFacts | null> => findCodeFacts(db, code),
    /** Spends the code and issues its tokens in one statement; undefined if it was spent since it was read. */
    exchangeCode: async (code: CodeFacts, issue: TokenIssue, now: Date): Promise<IssuedTokens | undefined> =>
      exchangeCodeOnce(db, await tags.load(now), code, issue, now),
    /** The refresh token with what its rules need; nothing is written (statement 1). */
    findRefresh: (token: string): Promise<RefreshFacts | null> => findRefreshFacts(db, token),
    /** Rotates in one statement; undefined if it was rotated or revoked since it was read. */
    rotateRefresh: async (
      rt: RefreshFacts,
      issue: TokenIssue,
      keep: KeepAnswer | undefined,
      now: Date,
    ): Promise<IssuedTokens | undefined> => rotateRefreshOnce(db, await tags.load(now), rt, issue, keep, now),
  };
}
