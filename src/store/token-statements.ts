// The statements of /token's one-round-trip paths (src/store/token-paths.ts explains why they keep every guarantee):
// each claims the codes or refresh tokens of a batch whose rules hold, and inserts the new tokens (and a refresh's
// kept answer) for the rows it claimed, in one statement.
import type { StoreDatabase } from '../db/database.ts';
import { Prisma } from '../generated/prisma/client.ts';
import { addSeconds } from '../lib/clock.ts';

export type Raw = Pick<StoreDatabase, 'raw'>;

/** Timestamps go in as ISO text cast to `timestamp`, which keeps UTC whatever the session's TimeZone is. */
export const ts = (d: Date) => d.toISOString();

/** The tokens one member of a batch mints before the statement, and their rows' ids and hashes. */
export interface Minted {
  accessToken: string;
  refreshToken: string | undefined;
  expiresIn: number;
  accessId: string;
  accessHash: string;
  refreshId: string;
  refreshHash: string;
}

/** One call's part of a batched statement: the hash it claims by, the claim's conditions, and what it mints. */
export interface Member {
  hash: string;
  now: Date;
  lifetimes: { access: number; refresh: number | undefined };
  minted: Minted;
  /** The claim's own conditions and, for a refresh, the kept answer: column name → text value ('' for none). */
  extra: Record<string, string>;
}

/** A column of the CTE `batch`: its name and the SQL type its text is cast to ('' casts to NULL). */
type Column = [name: string, type: 'text' | 'uuid' | 'timestamp(3)' | 'flag' | 'scopes'];

const TOKEN_COLUMNS: Column[] = [
  ['hash', 'text'],
  ['at', 'timestamp(3)'],
  ['access_id', 'uuid'],
  ['access_hash', 'text'],
  ['access_expires', 'timestamp(3)'],
  ['refresh_id', 'uuid'],
  ['refresh_hash', 'text'],
  ['refresh_expires', 'timestamp(3)'],
];

function tokenValues(m: Member): Record<string, string> {
  const { minted, now, lifetimes } = m;
  return {
    hash: m.hash,
    at: ts(now),
    access_id: minted.accessId,
    access_hash: minted.accessHash,
    access_expires: ts(addSeconds(now, lifetimes.access)),
    refresh_id: minted.refreshId,
    refresh_hash: minted.refreshHash,
    refresh_expires: lifetimes.refresh === undefined ? '' : ts(addSeconds(now, lifetimes.refresh)),
  };
}

/**
 * The CTE `batch`: one row per member, sent as one text array per column (the statement's text, and so its prepared
 * statement, is the same whatever the batch size). '' stands for NULL; a flag is '1' or ''; scopes go as
 * space-separated text, as a scope token never holds a space (RFC 6749 §3.3) and '' is the empty list.
 */
function batchOf(members: Member[], extra: Column[]): Prisma.Sql {
  const columns = [...TOKEN_COLUMNS, ...extra];
  const cast = ([name, type]: Column) =>
    type === 'text'
      ? `NULLIF(b.${name}, '') AS ${name}`
      : type === 'flag'
        ? `b.${name} <> '' AS ${name}`
        : type === 'scopes'
          ? `string_to_array(b.${name}, ' ') AS ${name}`
          : `NULLIF(b.${name}, '')::${type} AS ${name}`;
  const values = new Map<string, string[]>(columns.map(([name]) => [name, []]));
  for (const m of members) {
    for (const [name, value] of Object.entries(tokenValues(m))) values.get(name)?.push(value);
    for (const [name] of extra) values.get(name)?.push(m.extra[name] ?? '');
  }
  const arrays = columns.map(([name]) => Prisma.sql`${values.get(name)}::text[]`);
  return Prisma.sql`batch AS MATERIALIZED (
      SELECT ${Prisma.raw(columns.map(cast).join(', '))}
      FROM unnest(${Prisma.join(arrays)}) AS b(${Prisma.raw(columns.map(([n]) => n).join(', '))})
    )`;
}

/**
 * The CTEs `new_refresh` and `new_access` that insert each claimed member's minted tokens for the grant of the row
 * `claimed` returned for it (nothing for a member it returned none for). `claimed` has the columns hash, grant_id,
 * scopes (the refresh token's) and access_scopes; `parent` is the new refresh token's parent_id (cl.id or NULL).
 */
function newTokens(parent: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`new_refresh AS (
      INSERT INTO refresh_tokens (id, token_hash, grant_id, parent_id, scopes, created_at, expires_at)
      SELECT b.refresh_id, b.refresh_hash, cl.grant_id, ${parent}, cl.scopes, b.at, b.refresh_expires
      FROM claimed cl JOIN batch b ON b.hash = cl.hash
      WHERE b.refresh_id IS NOT NULL
    ), new_access AS (
      INSERT INTO access_tokens (id, token_hash, grant_id, refresh_token_id, scopes, created_at, expires_at)
      SELECT b.access_id, b.access_hash, cl.grant_id, b.refresh_id, cl.access_scopes, b.at, b.access_expires
      FROM claimed cl JOIN batch b ON b.hash = cl.hash
    )`;
}

/** A row the statement claimed: its hash, and the scopes of the access token it minted for it. */
export type Claimed = { hash: string; scopes: string[] };

const hashesOf = (members: Member[]) => members.map((m) => m.hash);

/**
 * A code exchange, for every code presented in one turn of the event loop (at most one member per code): the hashes
 * it claimed, each with its tokens' scopes.
 */
export function claimCodes(db: Raw, unique: Member[]): Promise<Claimed[]> {
  const rules: Column[] = [
    ['client_id', 'uuid'],
    ['challenge', 'text'],
    ['redirect_given', 'flag'],
    ['redirect_uri', 'text'],
    ['resource_id', 'uuid'],
  ];
  return db.raw<Claimed>(Prisma.sql`
      WITH ${batchOf(unique, rules)}, claimed AS (
        UPDATE authorization_codes c SET used_at = b.at
        FROM batch b
        WHERE c.code_hash = b.hash AND c.code_hash = ANY(${hashesOf(unique)}::text[]) AND c.used_at IS NULL
          AND c.expires_at > b.at AND c.client_id = b.client_id AND c.code_challenge = b.challenge
          AND (NOT b.redirect_given OR c.redirect_uri = b.redirect_uri)
          AND (b.resource_id IS NULL OR c.resource_server_id = b.resource_id)
          AND EXISTS (SELECT 1 FROM grants g WHERE g.id = c.grant_id AND g.revoked_at IS NULL)
        RETURNING c.code_hash AS hash, c.grant_id, coalesce(c.scopes, '{}') AS scopes,
                  coalesce(c.scopes, '{}') AS access_scopes
      ), ${newTokens(Prisma.sql`NULL::uuid`)}
      SELECT hash, access_scopes AS scopes FROM claimed`);
}

/**
 * A refresh rotation, for every refresh token presented in one turn of the event loop (at most one member per
 * token): the hashes it claimed, each with the new access token's scopes.
 */
export function claimRefreshes(db: Raw, unique: Member[]): Promise<Claimed[]> {
  const rules: Column[] = [
    ['client_id', 'uuid'],
    ['resource_id', 'uuid'],
    ['requested', 'scopes'],
    ['sealed', 'text'],
    ['keep_until', 'timestamp(3)'],
  ];
  // The access token gets the narrowed scope in the refresh token's order, or the refresh token's own (RFC 6749 §6).
  return db.raw<Claimed>(Prisma.sql`
      WITH ${batchOf(unique, rules)}, spent AS (
        UPDATE refresh_tokens r SET rotated_at = b.at
        FROM batch b
        WHERE r.token_hash = b.hash AND r.token_hash = ANY(${hashesOf(unique)}::text[])
          AND r.rotated_at IS NULL AND r.revoked_at IS NULL AND r.expires_at > b.at
          AND coalesce(r.scopes, '{}') @> b.requested
          AND EXISTS (SELECT 1 FROM grants g WHERE g.id = r.grant_id AND g.revoked_at IS NULL
                        AND g.client_id = b.client_id
                        AND (b.resource_id IS NULL OR g.resource_server_id = b.resource_id))
        RETURNING r.id, r.token_hash AS hash, r.grant_id, coalesce(r.scopes, '{}') AS scopes
      ), claimed AS (
        SELECT s.id, s.hash, s.grant_id, s.scopes,
               CASE WHEN cardinality(b.requested) = 0 THEN s.scopes
                    ELSE ARRAY(SELECT u.scope FROM unnest(s.scopes) WITH ORDINALITY AS u(scope, n)
                               WHERE u.scope = ANY(b.requested) ORDER BY u.n) END AS access_scopes
        FROM spent s JOIN batch b ON b.hash = s.hash
      ), ${newTokens(Prisma.sql`cl.id`)}, kept AS (
        INSERT INTO refresh_replays (id, sealed, scopes, expires_at)
        SELECT cl.id, b.sealed, cl.access_scopes, b.keep_until FROM claimed cl JOIN batch b ON b.hash = cl.hash
        WHERE b.sealed IS NOT NULL
      )
      SELECT hash, access_scopes AS scopes FROM claimed`);
}
