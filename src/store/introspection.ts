// The one read behind an uncached /introspect (RFC 7662): the access token with what its answer and its checks need
// from the grant, user, client, resource server and upstream sign-in, in a single SQL statement (README: How it is
// built). Prisma would run an `include` as one query per relation. Concurrent lookups of tokens no cache holds are
// coalesced (lib/batch-loader.ts): those asked for in the same turn of the event loop, or while earlier lookups are
// under way, share one statement, `WHERE token_hash = ANY(…)`, so a resource server's burst of first-seen tokens costs
// a few statements instead of one each. Every caller still gets a read that started after it asked.
import type { StoreDatabase } from '../db/database.ts';
import { Prisma } from '../generated/prisma/client.ts';
import { BatchLoader } from '../lib/batch-loader.ts';

export interface IntrospectedToken {
  scopes: string[];
  createdAt: Date;
  expiresAt: Date;
  /** The token or its grant was revoked. */
  revoked: boolean;
  /** The grant was revoked (which revokes its tokens): named as the cause in client traces. */
  grantRevoked: boolean;
  resourceServerId: string;
  /** The audience: the resource server's URI (RFC 8707). */
  audience: string;
  clientId: string;
  /** Null for a client acting for itself (client_credentials). */
  userId: string | null;
  userEmail: string | null;
  userDisabled: boolean;
  /** The upstream sign-in behind the grant, if any and not revoked: only its provider and identity snapshot. */
  upstreamProvider: string | null;
  upstreamClaims: Prisma.JsonValue | null;
}

interface Row {
  token_hash: string;
  scopes: string[];
  created_at: Date;
  expires_at: Date;
  revoked: boolean;
  grant_revoked: boolean;
  resource_server_id: string;
  audience: string;
  client_id: string;
  user_id: string | null;
  user_email: string | null;
  user_disabled: boolean | null;
  upstream_provider: string | null;
  upstream_claims: Prisma.JsonValue | null;
}

// A batch of 128 hashes runs in about a millisecond in PostgreSQL (index lookups; measured with EXPLAIN ANALYZE, 64
// hashes ~0.4-1 ms), so the cost of a statement, not of a token, is what batching saves. Four statements under way at
// once leave most of the pool (DATABASE_POOL_SIZE, default 10) to /token and the rest; on a loaded 2-core machine 2, 4
// and 10 measured alike within the noise (bench row (b)).
const MAX_BATCH = 128;
const MAX_IN_FLIGHT = 4;

export function introspectionStore(db: Queryable) {
  const loader = new BatchLoader<string, IntrospectedToken>((hashes) => findIntrospectedTokens(db, hashes), {
    maxBatch: MAX_BATCH,
    maxInFlight: MAX_IN_FLIGHT,
  });
  return {
    /** The token whose SHA-256 is `tokenHash`, active or not; null when there is none. */
    find: async (tokenHash: string): Promise<IntrospectedToken | null> =>
      (await loader.load(tokenHash)) ?? null,
  };
}

type Queryable = Pick<StoreDatabase, 'raw'>;

/** The tokens among `tokenHashes` (SHA-256s) that exist, active or not, by hash: one statement however many. */
export async function findIntrospectedTokens(
  db: Queryable,
  tokenHashes: readonly string[],
): Promise<Map<string, IntrospectedToken>> {
  // The uuid columns are read as text: the answer only compares and prints them.
  const rows = await db.raw<Row>(Prisma.sql`
    SELECT t.token_hash, t.scopes, t.created_at, t.expires_at,
           (t.revoked_at IS NOT NULL OR g.revoked_at IS NOT NULL) AS revoked, g.revoked_at IS NOT NULL AS grant_revoked,
           g.resource_server_id::text AS resource_server_id, rs.uri AS audience, c.client_id,
           u.id::text AS user_id, u.email AS user_email, u.disabled AS user_disabled,
           ul.provider AS upstream_provider, ul.claims AS upstream_claims
      FROM access_tokens t
      JOIN grants g ON g.id = t.grant_id
      JOIN clients c ON c.id = g.client_id
      JOIN resource_servers rs ON rs.id = g.resource_server_id
      LEFT JOIN users u ON u.id = g.user_id
      LEFT JOIN upstream_logins ul ON ul.id = g.upstream_login_id AND ul.revoked_at IS NULL
     WHERE t.token_hash = ANY(${tokenHashes}::text[])`);
  return new Map(rows.map((r) => [r.token_hash, introspectedToken(r)]));
}

function introspectedToken(r: Row): IntrospectedToken {
  return {
    scopes: r.scopes,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revoked: r.revoked,
    grantRevoked: r.grant_revoked,
    resourceServerId: r.resource_server_id,
    audience: r.audience,
    clientId: r.client_id,
    userId: r.user_id,
    userEmail: r.user_email,
    userDisabled: r.user_disabled === true,
    upstreamProvider: r.upstream_provider,
    upstreamClaims: r.upstream_claims,
  };
}

// Unknown tokens are cached as such for a few seconds at /introspect (routes/introspect.ts). A token is 256 random
// bits, so nobody presents one before it is issued without guessing it; still, an access token issued in this
// process drops its hash from those caches at once, so a hash presented before it existed is never hidden here.
const issuedListeners = new Set<(tokenHash: string) => void>();

/** Calls `fn(tokenHash)` whenever this process stores a new access token; returns the unsubscribe function. */
export function onAccessTokenIssued(fn: (tokenHash: string) => void): () => void {
  issuedListeners.add(fn);
  return () => issuedListeners.delete(fn);
}

/** Called by the store right after it inserts an access token (before its transaction commits). */
export function accessTokenIssued(tokenHash: string): void {
  for (const fn of issuedListeners) fn(tokenHash);
}
