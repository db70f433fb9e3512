// The happy paths of /token in one round trip each, no interactive transaction (README: How it is built): one
// statement whose CTEs claim the code or refresh token (UPDATE … WHERE every rule of the grant holds RETURNING) and
// insert the new tokens (and, for a refresh, the kept answer of the reuse window) only for the row that UPDATE
// returned. The rules are conditions of the claim, worked out in JS beforehand where they can be (the PKCE challenge
// of the presented verifier, the client, the resource, the narrowed scope); a request breaking any of them claims
// nothing and takes the transactional path in tokens.ts, which finds out which rule broke and answers as before.
// Why it keeps each guarantee:
// - Single use (RFC 9700 §2.1.1, §4.14): the claim holds `used_at IS NULL` / `rotated_at IS NULL`; of N concurrent
//   statements on one row, Postgres lets exactly one update it (the others wait for its commit, re-check the
//   condition and return nothing). A caller whose claim returns nothing takes the transactional path, which sees the
//   spent row and applies the replay rules (code replay revokes the grant; a refresh inside the reuse window gets
//   the kept answer, which the winner's same statement already committed).
// - Nothing half-written: it is one statement, so it commits whole or not at all (a crash or lost connection leaves
//   the code or refresh token unspent, or spent with its tokens and kept answer).
// - Revocation: the claim checks the token and its grant are not revoked in its own snapshot. A revocation racing it
//   that commits later still ends the new tokens: /introspect and refresh both refuse tokens of a revoked grant.
// - Issuing tokens changes nothing another instance caches, so no change notification is sent (as before).
// Requests that arrive together share the statement (group commit, src/lib/coalesce.ts): it claims each row with its
// own conditions and inserts only for the rows it claimed. Single use is still decided per row (two members
// presenting one value: the second is not sent and loses, as it would lose the race); a statement that fails runs
// each member alone, so only the failing one fails (unless its connection failed: see retryWrite).
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import { coalesce } from '../lib/coalesce.ts';
import { hashSecret } from '../lib/crypto.ts';
import { openWithSecret, sealWithSecret } from '../lib/seal.ts';
import type { TokenTags } from '../lib/token-tags.ts';
import { uuidv7 } from '../lib/uuid7.ts';
import { calculateS256Challenge } from '../oauth/pkce.ts';
import { accessTokenIssued } from './introspection.ts';
import type { TokenTagSource } from './settings.ts';
import {
  type Claimed,
  claimCodes,
  claimRefreshes,
  type Member,
  type Minted,
  type Raw,
  ts,
} from './token-statements.ts';
import type { IssuedTokens } from './tokens.ts';

/** Every token is `prefix + 43 random characters + 8-character keyed tag` (src/lib/token-tags.ts). */
export const TOKEN_PREFIX = { code: 'lk_code_', access: 'lk_at_', refresh: 'lk_rt_' } as const;

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

/** Lifetimes of what a request mints, in seconds; no refresh token when `refresh` is undefined. */
export interface Lifetimes {
  access: number;
  refresh: number | undefined;
}

/** A code exchange as presented (RFC 6749 §4.1.3): every value the code must match to be spent. */
export interface CodeExchange {
  code: string;
  /** The authenticated client's row id. */
  clientId: string;
  /** The PKCE code_verifier (RFC 7636 §4.5), already checked to be well-formed. */
  verifier: string;
  /** Absent when the request did not send one. */
  redirectUri: string | undefined;
  /** The resource server the request names (RFC 8707); undefined when it names none. */
  resourceId: string | undefined;
  lifetimes: Lifetimes;
}

/** A refresh as presented (RFC 6749 §6): every value the refresh token must match to be rotated. */
export interface RefreshRotation {
  token: string;
  clientId: string;
  resourceId: string | undefined;
  /** The narrowed scope asked for; empty for the token's own. */
  scopes: string[];
  lifetimes: Lifetimes;
  /** Until when the answer is kept for the reuse window (RFC 9700 §4.14.2); undefined keeps none. */
  keepUntil: Date | undefined;
}

/**
 * The reuse window's kept answer (RFC 9700 §4.14.2), sealed under the presented refresh token (src/lib/seal.ts) and
 * bound to its hash; the scopes are kept beside it in the clear (they are no secret, and the single statement only
 * learns them from the row it claims).
 */
export function sealKeptAnswer(
  presented: string,
  tokens: Omit<IssuedTokens, 'scopes'>,
  presentedHash = hashSecret(presented),
): string {
  const { accessToken, refreshToken, expiresIn } = tokens;
  return sealWithSecret(presented, presentedHash, JSON.stringify({ accessToken, refreshToken, expiresIn }));
}

/** Opens a kept answer; undefined unless `presented` is the token it was kept for. */
export function openKeptAnswer(
  presented: string,
  refreshId: string,
  row: { sealed: string; scopes: string[] },
): IssuedTokens | undefined {
  // An answer kept by an earlier version is bound to the row id and holds its scopes (it lives one reuse window).
  const opened =
    openWithSecret(presented, hashSecret(presented), row.sealed) ??
    openWithSecret(presented, refreshId, row.sealed);
  if (opened === undefined) return undefined;
  const answer = JSON.parse(opened) as Omit<IssuedTokens, 'scopes'> & { scopes?: string[] };
  return { ...answer, scopes: answer.scopes ?? row.scopes };
}

// Row ids are UUIDv7 (time first): each rotation inserts two token rows and index entries pointing at them, and
// random ids would scatter those over the whole of each index (measured: ~10–25 % less Postgres CPU a refresh on a
// database of 400k grants, more as it grows). The ids are no secret; the tokens' own random parts are unchanged.
function mint(tags: TokenTags, lifetimes: Lifetimes, now: Date): Minted {
  const accessToken = tags.mint(TOKEN_PREFIX.access);
  const refreshToken = lifetimes.refresh === undefined ? undefined : tags.mint(TOKEN_PREFIX.refresh);
  return {
    accessToken,
    refreshToken,
    expiresIn: lifetimes.access,
    accessId: uuidv7(now.getTime()),
    accessHash: hashSecret(accessToken),
    refreshId: refreshToken === undefined ? '' : uuidv7(now.getTime()),
    refreshHash: refreshToken === undefined ? '' : hashSecret(refreshToken),
  };
}

/**
 * Runs `write` (one statement, returning the hashes it claimed with the new access token's scopes) for the members,
 * at most one per hash: a second member presenting the same code or refresh token in one batch is answered
 * undefined (lost to the first, as it would lose a race), once the statement has committed; the caller's
 * transactional path then sees it spent.
 */
async function writeOnce(
  members: Member[],
  write: (unique: Member[]) => Promise<Claimed[]>,
): Promise<(IssuedTokens | undefined)[]> {
  const first = new Map<string, Member>();
  for (const m of members) if (!first.has(m.hash)) first.set(m.hash, m);
  const claimed = new Map((await write([...first.values()])).map((r) => [r.hash, r.scopes]));
  return members.map((m) => {
    const scopes = claimed.get(m.hash);
    if (first.get(m.hash) !== m || scopes === undefined) return undefined;
    accessTokenIssued(m.minted.accessHash); // /introspect's negative cache forgets the hash (introspection.ts)
    const { accessToken, refreshToken, expiresIn } = m.minted;
    return { accessToken, refreshToken, scopes, expiresIn };
  });
}

// A failed batch write runs member by member, unless the connection failed: it may have committed (a retry would take
// its own claim for a replay), so its members get the outage answer (503).
const retryWrite = (err: unknown) => !isDatabaseUnavailable(err);

// One statement of each path under way at a time, the rest of the calls waiting for it to return: under load the
// batches grow instead of the statements, so their fixed cost (plan start-up, commit and WAL flush, waking a database
// process, contention between backends inserting into the same index pages) is shared by more requests, and /token
// holds at most two connections of the pool (DATABASE_POOL_SIZE, default 10). Measured on a 2-core machine at 32
// connections, against four under way (bench/token-paths.ts, 3 alternating rounds, twice): PostgreSQL CPU a request
// 40–50 % lower for both paths, code exchange +19 % and +40 % in median req/s, refresh rotation +7 % and +9 %; two
// under way measured between the two. A statement that waits (a row lock held by a concurrent replay's short
// transaction) holds back the calls behind it only until it returns; no transaction calls these paths (the grant
// handlers open theirs only after the one-statement path returned), so none holds a lock while waiting for them.
const WRITE_BATCHES = { retryAlone: retryWrite, maxBatch: 64, maxInFlight: 1 };

/**
 * The store's view of these paths (spread into tokenStore). Calls made in the same turn of the event loop share
 * their statement (src/lib/coalesce.ts): concurrent requests cost one round trip between them, committed once (one
 * WAL flush), with single use still decided per row by the claim.
 */
export function tokenPaths(db: Raw, tags: TokenTagSource) {
  const exchange = coalesce(
    (members: Member[]) => writeOnce(members, (unique) => claimCodes(db, unique)),
    WRITE_BATCHES,
  );
  const rotate = coalesce(
    (members: Member[]) => writeOnce(members, (unique) => claimRefreshes(db, unique)),
    WRITE_BATCHES,
  );
  return {
    /**
     * Spends the code and issues its tokens in one statement when every rule holds. Undefined when it claimed
     * nothing (unknown, spent, a rule broken, its grant revoked): the caller then takes the transactional path,
     * which finds out why and applies the replay rules.
     */
    async exchangeCode(p: CodeExchange, now: Date): Promise<IssuedTokens | undefined> {
      const minted = mint(await tags.load(now), p.lifetimes, now);
      const extra = {
        client_id: p.clientId,
        challenge: calculateS256Challenge(p.verifier),
        redirect_given: p.redirectUri === undefined ? '' : '1',
        redirect_uri: p.redirectUri ?? '',
        resource_id: p.resourceId ?? '',
      };
      return exchange({ hash: hashSecret(p.code), now, lifetimes: p.lifetimes, minted, extra });
    },
    /**
     * Spends the refresh token and issues the next pair in one statement when every rule holds, keeping the answer
     * for the reuse window when `keepUntil` is given. Undefined when it claimed nothing (unknown, rotated, revoked,
     * expired, a rule broken): the caller then takes the transactional path, which decides between an error, the
     * kept answer and revoking the grant.
     */
    async rotateRefresh(p: RefreshRotation, now: Date): Promise<IssuedTokens | undefined> {
      const minted = mint(await tags.load(now), p.lifetimes, now);
      const hash = hashSecret(p.token);
      const extra = {
        client_id: p.clientId,
        resource_id: p.resourceId ?? '',
        requested: p.scopes.join(' '),
        sealed: p.keepUntil ? sealKeptAnswer(p.token, minted, hash) : '',
        keep_until: p.keepUntil ? ts(p.keepUntil) : '',
      };
      return rotate({ hash, now, lifetimes: p.lifetimes, minted, extra });
    },
  };
}
