// Removes rows nothing can use any more, in bounded batches so a large backlog never holds long locks:
// expired codes, tokens and sessions, ended rate-limit windows, grants left with nothing in them, spent or expired
// password links, and dynamically registered clients unused for UNUSED_CLIENT_TTL (DCR happens on every fresh
// Claude connection), spent upstream sign-in flows and upstream logins nothing uses any more.
// Rotated refresh tokens stay until they expire: presenting one again must still revoke its grant. The answers kept
// for the refresh reuse window go as soon as the window ends.
//
// At scale (README: How it is built): every batch is found through an index and starts where the previous one ended, so a
// backlog of millions costs one index range scan per batch, never a full scan; a run may stop between batches when
// its time is up (`outOfTime`), and the next run continues. Each batch is one short statement: readers such as
// /introspect are never blocked (deleting takes row locks only, which reads do not wait for).
import type { PrismaClient } from '../generated/prisma/client.ts';
import { notifyChange } from './changes.ts';

export interface SweepResult {
  authorizationCodes: number;
  accessTokens: number;
  refreshTokens: number;
  refreshReplays: number;
  grants: number;
  sessions: number;
  rateLimits: number;
  clients: number;
  passwordLinks: number;
  upstreamFlows: number;
  upstreamLogins: number;
}

/** Where the walk over old grants stopped: kept by the caller between runs so the next run goes on from there. */
export interface SweepCursor {
  /** The last grant looked at: its created_at as Postgres prints it (a text round trip loses nothing), and id. */
  grants?: { createdAt: string; id: string } | undefined;
}

export interface SweepOptions {
  /** Asked between batches; true ends the run there (`complete: false`). Default: never. */
  outOfTime?: () => boolean;
  /** Carries the grants walk from one run to the next. */
  cursor?: SweepCursor;
  /** Rows per statement (default 1,000). */
  batch?: number;
}

export interface SweepRun {
  removed: SweepResult;
  /** False when the run stopped because its time was up: more may be left for the next run. */
  complete: boolean;
}

// Used codes are kept a day past expiry so a late replay still finds them and revokes what they issued.
const CODE_GRACE_MS = 86_400_000;
const EPOCH = '1970-01-01 00:00:00';
const NIL_UUID = '00000000-0000-0000-0000-000000000000';
// Later than any timestamp a row holds: the upper bound for "every revoked session".
const END_OF_TIME = new Date('9999-12-31T00:00:00Z');

class OutOfTime extends Error {}

interface Sweeper {
  prisma: PrismaClient;
  /** Counted per batch, so a run cut short still reports every row it removed. */
  removed: SweepResult;
  batch: number;
  outOfTime: () => boolean;
}

function checkTime(s: Sweeper): void {
  if (s.outOfTime()) throw new OutOfTime();
}

/**
 * Deletes rows with `key < cutoff` (plus `extra`, a constant condition of this file) in batches, in key order
 * through the index on `key`. Each batch starts at the last key deleted, so the index entries of rows already
 * deleted (dead until vacuumed) are not walked again.
 */
async function deleteByKey(
  s: Sweeper,
  field: keyof SweepResult,
  table: string,
  key: string,
  cutoff: Date,
  extra = 'TRUE',
  idColumn = 'id',
): Promise<void> {
  let from = EPOCH;
  for (;;) {
    checkTime(s);
    // Table, columns and `extra` are constants from this file; the bounds are parameters.
    const rows = await s.prisma.$queryRawUnsafe<{ n: number; last: string | null }[]>(
      `WITH batch AS (
         SELECT "${idColumn}" AS k FROM "${table}"
         WHERE "${key}" < $1 AND "${key}" >= $2::timestamp(3) AND ${extra}
         ORDER BY "${key}" LIMIT ${s.batch}),
       gone AS (DELETE FROM "${table}" t USING batch WHERE t."${idColumn}" = batch.k RETURNING t."${key}" AS key)
       SELECT count(*)::int AS n, max(key)::text AS last FROM gone`,
      cutoff,
      from,
    );
    const n = Number(rows[0]?.n ?? 0);
    s.removed[field] += n;
    if (n < s.batch || !rows[0]?.last) return;
    from = rows[0].last;
  }
}

/** For small tables whose condition no single index serves: batches of `SELECT id … LIMIT n`. */
async function deleteWhere(
  s: Sweeper,
  field: keyof SweepResult,
  table: string,
  condition: string,
  param: Date,
): Promise<void> {
  for (;;) {
    checkTime(s);
    // Table and condition are constants from this file; only `param` is a parameter.
    const n = await s.prisma.$executeRawUnsafe(
      `DELETE FROM "${table}" WHERE id IN (SELECT id FROM "${table}" WHERE ${condition} LIMIT ${s.batch})`,
      param,
    );
    s.removed[field] += n;
    if (n < s.batch) return;
  }
}

/**
 * Walks grants created before `cutoff` in (created_at, id) order and deletes those with no code, access token or
 * refresh token left. Each batch looks at the next `batch` grants only, and each of them costs three index probes
 * (the grant_id indexes): a grant that a live refresh token still needs is looked at and kept.
 */
async function deleteEmptyGrants(s: Sweeper, cutoff: Date, cursor: SweepCursor): Promise<void> {
  for (;;) {
    checkTime(s);
    const from = cursor.grants ?? { createdAt: EPOCH, id: NIL_UUID };
    const rows = await s.prisma.$queryRaw<
      { n: number; seen: number; last_at: string | null; last_id: string | null }[]
    >`WITH batch AS MATERIALIZED (
        SELECT id, created_at FROM grants
        WHERE created_at < ${cutoff} AND (created_at, id) > (${from.createdAt}::timestamp(3), ${from.id}::uuid)
        ORDER BY created_at, id LIMIT ${s.batch}),
      gone AS (
        DELETE FROM grants g USING batch b WHERE g.id = b.id
          AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = b.id)
          AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = b.id)
          AND NOT EXISTS (SELECT 1 FROM authorization_codes c WHERE c.grant_id = b.id)
        RETURNING g.id)
      SELECT (SELECT count(*)::int FROM gone) AS n, (SELECT count(*)::int FROM batch) AS seen,
        l.created_at::text AS last_at, l.id::text AS last_id
      FROM (SELECT 1) one
      LEFT JOIN (SELECT created_at, id FROM batch ORDER BY created_at DESC, id DESC LIMIT 1) l ON TRUE`;
    const r = rows[0];
    s.removed.grants += Number(r?.n ?? 0);
    if (!r || Number(r.seen) < s.batch || !r.last_at || !r.last_id) {
      cursor.grants = undefined; // the walk reached the end: the next one starts from the oldest grant again
      return;
    }
    cursor.grants = { createdAt: r.last_at, id: r.last_id };
  }
}

/** Nothing removed yet: every count at zero. */
export function emptyResult(): SweepResult {
  return {
    authorizationCodes: 0,
    accessTokens: 0,
    refreshTokens: 0,
    refreshReplays: 0,
    grants: 0,
    sessions: 0,
    rateLimits: 0,
    clients: 0,
    passwordLinks: 0,
    upstreamFlows: 0,
    upstreamLogins: 0,
  };
}

/** One sweeper run: stops between batches once `outOfTime()` says so; the next run (same cursor) continues. */
export async function sweepRun(
  prisma: PrismaClient,
  now: Date,
  unusedClientTtl: number,
  options: SweepOptions = {},
): Promise<SweepRun> {
  const r = emptyResult();
  const s: Sweeper = {
    prisma,
    removed: r,
    batch: options.batch ?? 1000,
    outOfTime: options.outOfTime ?? (() => false),
  };
  const cursor = options.cursor ?? {};
  const codeCutoff = new Date(now.getTime() - CODE_GRACE_MS);
  const unusedSince = new Date(now.getTime() - unusedClientTtl * 1000);
  const phases: (() => Promise<void>)[] = [
    () => deleteByKey(s, 'authorizationCodes', 'authorization_codes', 'expires_at', codeCutoff),
    () => deleteByKey(s, 'accessTokens', 'access_tokens', 'expires_at', now),
    () => deleteByKey(s, 'refreshReplays', 'refresh_replays', 'expires_at', now),
    () => deleteByKey(s, 'refreshTokens', 'refresh_tokens', 'expires_at', now),
    () => deleteEmptyGrants(s, codeCutoff, cursor),
    () => deleteByKey(s, 'sessions', 'sessions', 'expires_at', now),
    () => deleteByKey(s, 'sessions', 'sessions', 'idle_expires_at', now),
    () => deleteByKey(s, 'sessions', 'sessions', 'revoked_at', END_OF_TIME),
    () => deleteByKey(s, 'rateLimits', 'rate_limits', 'reset_at', new Date(now.getTime() + 1), 'TRUE', 'key'),
    () => deleteByKey(s, 'clients', 'clients', 'last_used_at', unusedSince, `kind = 'DYNAMIC'`),
    () =>
      deleteWhere(
        s,
        'clients',
        'clients',
        `kind = 'DYNAMIC' AND last_used_at IS NULL AND created_at < $1`,
        unusedSince,
      ),
    // Spent links go with expired ones: neither can set a password any more.
    () => deleteWhere(s, 'passwordLinks', 'password_tokens', 'expires_at < $1 OR used_at IS NOT NULL', now),
    // Upstream sign-in flows an hour past their expiry.
    () =>
      deleteByKey(s, 'upstreamFlows', 'upstream_flows', 'expires_at', new Date(now.getTime() - 3_600_000)),
    // Upstream logins revoked a day ago, or a day old with no live session and no unrevoked grant left on them (spec
    // federation §5.2). $1 is a day ago, so `$1 + 1 day` is now.
    () =>
      deleteWhere(
        s,
        'upstreamLogins',
        'upstream_logins',
        `(revoked_at IS NOT NULL AND revoked_at < $1)
           OR (created_at < $1
             AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.upstream_login_id = upstream_logins.id
               AND s.revoked_at IS NULL AND s.expires_at > $1 + interval '1 day'
               AND s.idle_expires_at > $1 + interval '1 day')
             AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.upstream_login_id = upstream_logins.id
               AND g.revoked_at IS NULL))`,
        codeCutoff,
      ),
  ];
  let complete = true;
  try {
    for (const phase of phases) await phase();
  } catch (err) {
    if (!(err instanceof OutOfTime)) throw err;
    complete = false;
  } finally {
    // Instances keep client rows in memory until a change notification (oauth/clients.ts).
    if (r.clients > 0) await notifyChange(prisma, 'client');
  }
  return { removed: r, complete };
}

/** Sweeps everything there is to sweep, however long it takes (tests, and the CLI). */
export async function sweepExpired(
  prisma: PrismaClient,
  now: Date,
  unusedClientTtl: number,
): Promise<SweepResult> {
  return (await sweepRun(prisma, now, unusedClientTtl)).removed;
}
