// The happy paths of /token in two round trips each, no interactive transaction (README: How it is built):
//   1. one read: the code or refresh token with the grant facts its rules need (nothing written);
//   2. one conditional write: a single statement whose CTEs spend the code or refresh token (UPDATE … WHERE still
//      unspent RETURNING) and insert the new tokens (and, for a refresh, the kept answer of the reuse window) only
//      from the row that UPDATE returned.
// The grant handler checks every rule in JS between the two, on the row statement 1 read. Why it keeps each guarantee:
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
// Requests that arrive together share both statements (group commit, src/lib/coalesce.ts): one read for all their
// codes or refresh tokens, one write that claims each row with the same condition and inserts only for the rows it
// claimed. Single use is still decided per row (two members presenting one value: the second is not sent and
// loses, as it would lose the race); a broken rule keeps its request out of the write; a write that fails runs each
// member alone, so only the failing one fails (unless its connection failed: see retryWrite).
import { randomUUID } from 'node:crypto';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import { Prisma, type PrismaClient } from '../generated/prisma/client.ts';
import { addSeconds } from '../lib/clock.ts';
import { coalesce } from '../lib/coalesce.ts';
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

type Minted = { tokens: IssuedTokens; accessId: string; accessHash: string } & Record<
  'refreshId' | 'refreshHash',
  string | null
>;

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

/** One call's part of a batched write: what to claim (a code's or refresh token's id) and the rows to write. */
interface Member {
  /** The id of the code or refresh token the call spends. */
  key: string;
  now: Date;
  issue: TokenIssue;
  minted: Minted;
  /** The reuse window's kept answer (refresh rotation only). */
  sealed: string | null;
  keepUntil: Date | null;
}

/**
 * The CTE `batch`: one row per member, sent as one text array per column (the statement's text, and so its prepared
 * statement, is the same whatever the batch size). Scopes go as space-separated text: a scope token never holds a
 * space (RFC 6749 §3.3), and '' is the empty list.
 */
function batchOf(members: Member[]): Prisma.Sql {
  const column = (f: (m: Member) => string) => members.map(f);
  const accessExpires = (m: Member) => ts(addSeconds(m.now, m.issue.accessTokenTtl));
  const refreshExpires = (m: Member) => ts(addSeconds(m.now, m.issue.refreshTokenTtl ?? 0));
  return Prisma.sql`batch AS MATERIALIZED (
      SELECT b.key_id::uuid AS key_id, b.at::timestamp(3) AS at, b.access_id::uuid AS access_id, b.access_hash,
             string_to_array(b.access_scopes, ' ') AS access_scopes,
             b.access_expires::timestamp(3) AS access_expires, NULLIF(b.refresh_id, '')::uuid AS refresh_id,
             b.refresh_hash, string_to_array(b.refresh_scopes, ' ') AS refresh_scopes,
             b.refresh_expires::timestamp(3) AS refresh_expires, NULLIF(b.sealed, '') AS sealed,
             NULLIF(b.keep_until, '')::timestamp(3) AS keep_until
      FROM unnest(${column((m) => m.key)}::text[], ${column((m) => ts(m.now))}::text[],
                  ${column((m) => m.minted.accessId)}::text[], ${column((m) => m.minted.accessHash)}::text[],
                  ${column((m) => m.issue.accessScopes.join(' '))}::text[], ${column(accessExpires)}::text[],
                  ${column((m) => m.minted.refreshId ?? '')}::text[], ${column((m) => m.minted.refreshHash ?? '')}::text[],
                  ${column((m) => m.issue.refreshScopes.join(' '))}::text[], ${column(refreshExpires)}::text[],
                  ${column((m) => m.sealed ?? '')}::text[], ${column((m) => (m.keepUntil ? ts(m.keepUntil) : ''))}::text[])
        AS b(key_id, at, access_id, access_hash, access_scopes, access_expires, refresh_id, refresh_hash,
             refresh_scopes, refresh_expires, sealed, keep_until)
    )`;
}

/**
 * The CTEs `new_refresh` and `new_access` that insert each claimed member's minted tokens for the grant of the row
 * `claimed` returned for it (nothing for a member it returned none for); `parent` is the new refresh token's
 * parent_id, a column of `claimed` (cl) or NULL.
 */
function newTokens(parent: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`new_refresh AS (
      INSERT INTO refresh_tokens (id, token_hash, grant_id, parent_id, scopes, created_at, expires_at)
      SELECT b.refresh_id, b.refresh_hash, cl.grant_id, ${parent}, b.refresh_scopes, b.at, b.refresh_expires
      FROM claimed cl JOIN batch b ON b.key_id = cl.id
      WHERE b.refresh_id IS NOT NULL
    ), new_access AS (
      INSERT INTO access_tokens (id, token_hash, grant_id, refresh_token_id, scopes, created_at, expires_at)
      SELECT b.access_id, b.access_hash, cl.grant_id, b.refresh_id, b.access_scopes, b.at, b.access_expires
      FROM claimed cl JOIN batch b ON b.key_id = cl.id
    )`;
}

/**
 * Runs `write` (one statement, returning the ids it claimed) for the members, at most one per key: a second member
 * presenting the same code or refresh token in one batch is answered undefined (lost to the first, as it would
 * lose a race), once the statement has committed; the caller's transactional path then sees it spent.
 */
async function writeOnce(
  members: Member[],
  write: (unique: Member[]) => Promise<{ id: string }[]>,
): Promise<(IssuedTokens | undefined)[]> {
  const first = new Map<string, Member>();
  for (const m of members) if (!first.has(m.key)) first.set(m.key, m);
  const claimed = new Set((await write([...first.values()])).map((r) => r.id));
  return members.map((m) => issued(first.get(m.key) === m && claimed.has(m.key), m.minted));
}

type CodeRow = Omit<CodeFacts, 'grant'> & { codeHash: string; grantRevokedAt: Date | null };

/** Statement 1 of a code exchange, for every code presented in one turn of the event loop. */
async function findCodes(db: Raw, hashes: string[]): Promise<(CodeFacts | null)[]> {
  const rows = await db.$queryRaw<CodeRow[]>`
    SELECT c.code_hash AS "codeHash", c.id::text AS "id", c.grant_id::text AS "grantId",
           c.client_id::text AS "clientId", c.resource_server_id::text AS "resourceServerId",
           c.redirect_uri AS "redirectUri", c.code_challenge AS "codeChallenge",
           coalesce(c.scopes, '{}') AS "scopes", c.expires_at AS "expiresAt", c.used_at AS "usedAt",
           g.revoked_at AS "grantRevokedAt"
    FROM authorization_codes c JOIN grants g ON g.id = c.grant_id
    WHERE c.code_hash = ANY(${hashes}::text[])`;
  const byHash = new Map(rows.map((r) => [r.codeHash, r]));
  return hashes.map((h) => {
    const row = byHash.get(h);
    if (!row) return null;
    const { codeHash: _, grantRevokedAt, ...facts } = row;
    return { ...facts, grant: { revokedAt: grantRevokedAt } };
  });
}

/** Statement 2 of a code exchange, for every claim made in one turn of the event loop. */
function exchangeCodes(db: Raw, members: Member[]): Promise<(IssuedTokens | undefined)[]> {
  return writeOnce(
    members,
    (unique) => db.$queryRaw<{ id: string }[]>`
      WITH ${batchOf(unique)}, claimed AS (
        UPDATE authorization_codes c SET used_at = b.at
        FROM batch b
        WHERE c.id = b.key_id AND c.id = ANY(${unique.map((m) => m.key)}::uuid[]) AND c.used_at IS NULL
          AND EXISTS (SELECT 1 FROM grants g WHERE g.id = c.grant_id AND g.revoked_at IS NULL)
        RETURNING c.id, c.grant_id
      ), ${newTokens(Prisma.sql`NULL::uuid`)}
      SELECT id::text AS id FROM claimed`,
  );
}

type RefreshRow = Omit<RefreshFacts, 'grant'> & {
  tokenHash: string;
  clientId: string;
  resourceServerId: string;
  grantRevokedAt: Date | null;
};

/** Statement 1 of a refresh, for every refresh token presented in one turn of the event loop. */
async function findRefreshes(db: Raw, hashes: string[]): Promise<(RefreshFacts | null)[]> {
  const rows = await db.$queryRaw<RefreshRow[]>`
    SELECT r.token_hash AS "tokenHash", r.id::text AS "id", r.grant_id::text AS "grantId",
           coalesce(r.scopes, '{}') AS "scopes", r.expires_at AS "expiresAt", r.rotated_at AS "rotatedAt",
           r.revoked_at AS "revokedAt", g.client_id::text AS "clientId",
           g.resource_server_id::text AS "resourceServerId", g.revoked_at AS "grantRevokedAt"
    FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id
    WHERE r.token_hash = ANY(${hashes}::text[])`;
  const byHash = new Map(rows.map((r) => [r.tokenHash, r]));
  return hashes.map((h) => {
    const row = byHash.get(h);
    if (!row) return null;
    const { tokenHash: _, clientId, resourceServerId, grantRevokedAt, ...facts } = row;
    return { ...facts, grant: { clientId, resourceServerId, revokedAt: grantRevokedAt } };
  });
}

/** The reuse window's kept answer (RFC 9700 §4.14.2), sealed under the presented token (src/lib/seal.ts). */
export interface KeepAnswer {
  presented: string;
  until: Date;
}

/** Statement 2 of a refresh, for every rotation made in one turn of the event loop. */
function rotateRefreshes(db: Raw, members: Member[]): Promise<(IssuedTokens | undefined)[]> {
  return writeOnce(
    members,
    (unique) => db.$queryRaw<{ id: string }[]>`
      WITH ${batchOf(unique)}, claimed AS (
        UPDATE refresh_tokens r SET rotated_at = b.at
        FROM batch b
        WHERE r.id = b.key_id AND r.id = ANY(${unique.map((m) => m.key)}::uuid[])
          AND r.rotated_at IS NULL AND r.revoked_at IS NULL
          AND EXISTS (SELECT 1 FROM grants g WHERE g.id = r.grant_id AND g.revoked_at IS NULL)
        RETURNING r.id, r.grant_id
      ), ${newTokens(Prisma.sql`cl.id`)}, kept AS (
        INSERT INTO refresh_replays (id, sealed, expires_at)
        SELECT cl.id, b.sealed, b.keep_until FROM claimed cl JOIN batch b ON b.key_id = cl.id
        WHERE b.sealed IS NOT NULL
      )
      SELECT id::text AS id FROM claimed`,
  );
}

// A failed batch write runs member by member, unless the connection failed: it may have committed (a retry would take
// its own claim for a replay), so its members get the outage answer (503).
const retryWrite = (err: unknown) => !isDatabaseUnavailable(err);

/**
 * The store's view of these paths (spread into tokenStore). Calls made in the same turn of the event loop share
 * their statements (src/lib/coalesce.ts): concurrent requests cost one read and one write between them, each
 * committed once (one WAL flush), with single use still decided per row by the write's claim.
 */
export function tokenPaths(db: Raw, tags: TokenTagSource) {
  const findCode = coalesce((hashes: string[]) => findCodes(db, hashes));
  const exchange = coalesce((members: Member[]) => exchangeCodes(db, members), retryWrite);
  const findRefresh = coalesce((hashes: string[]) => findRefreshes(db, hashes));
  const rotate = coalesce((members: Member[]) => rotateRefreshes(db, members), retryWrite);
  return {
    /** The code with what its exchange rules need; nothing is written (statement 1). */
    findCode: (code: string): Promise<CodeFacts | null> => findCode(hashSecret(code)),
    /**
     * Spends the code and issues its tokens in one statement. Undefined when the code was spent (or its grant
     * revoked) since it was read: the caller then takes the transactional path, which applies the replay rules.
     */
    async exchangeCode(code: CodeFacts, issue: TokenIssue, now: Date): Promise<IssuedTokens | undefined> {
      const minted = mint(await tags.load(now), issue);
      return exchange({ key: code.id, now, issue, minted, sealed: null, keepUntil: null });
    },
    /** The refresh token with what its rules need; nothing is written (statement 1). */
    findRefresh: (token: string): Promise<RefreshFacts | null> => findRefresh(hashSecret(token)),
    /**
     * Spends the refresh token and issues the next pair in one statement, keeping the answer for the reuse window
     * when `keep` is given. Undefined when the token was rotated or revoked (or its grant revoked) since it was
     * read: the caller then takes the transactional path, which applies the reuse-window and replay rules.
     */
    async rotateRefresh(
      rt: RefreshFacts,
      issue: TokenIssue,
      keep: KeepAnswer | undefined,
      now: Date,
    ): Promise<IssuedTokens | undefined> {
      const minted = mint(await tags.load(now), issue);
      // Sealed exactly as keepReplayAnswer in tokens.ts does, so findReplayAnswer opens either.
      const sealed = keep ? sealWithSecret(keep.presented, rt.id, JSON.stringify(minted.tokens)) : null;
      return rotate({ key: rt.id, now, issue, minted, sealed, keepUntil: keep?.until ?? null });
    },
  };
}
