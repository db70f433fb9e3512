// Removes rows nothing can use any more, in bounded batches so a large backlog never holds long locks:
// expired codes, tokens and sessions, ended rate-limit windows, grants left with nothing in them, spent or expired
// password links, and dynamically registered clients unused for UNUSED_CLIENT_TTL (DCR happens on every fresh
// Claude connection), spent upstream sign-in flows and upstream logins nothing uses any more.
// Rotated refresh tokens stay until they expire: presenting one again must still revoke its grant. The answers kept
// for the refresh reuse window go as soon as the window ends.
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

const BATCH = 1000;

// Used codes are kept a day past expiry so a late replay still finds them and revokes what they issued.
const CODE_GRACE_MS = 86_400_000;

async function deleteInBatches(
  prisma: PrismaClient,
  table: string,
  condition: string,
  now: Date,
): Promise<number> {
  let total = 0;
  for (;;) {
    // Table and condition are constants from this file; only `now` is a parameter.
    const n = await prisma.$executeRawUnsafe(
      `DELETE FROM "${table}" WHERE id IN (SELECT id FROM "${table}" WHERE ${condition} LIMIT ${BATCH})`,
      now,
    );
    total += n;
    if (n < BATCH) return total;
  }
}

export async function sweepExpired(
  prisma: PrismaClient,
  now: Date,
  unusedClientTtl: number,
): Promise<SweepResult> {
  const codeCutoff = new Date(now.getTime() - CODE_GRACE_MS);
  const authorizationCodes = await deleteInBatches(
    prisma,
    'authorization_codes',
    'expires_at < $1',
    codeCutoff,
  );
  const accessTokens = await deleteInBatches(prisma, 'access_tokens', 'expires_at < $1', now);
  const refreshReplays = await deleteInBatches(prisma, 'refresh_replays', 'expires_at < $1', now);
  const refreshTokens = await deleteInBatches(prisma, 'refresh_tokens', 'expires_at < $1', now);
  const grants = await deleteInBatches(
    prisma,
    'grants',
    `created_at < $1
       AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = grants.id)
       AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id)
       AND NOT EXISTS (SELECT 1 FROM authorization_codes c WHERE c.grant_id = grants.id)`,
    codeCutoff,
  );
  const sessions = await deleteInBatches(
    prisma,
    'sessions',
    'expires_at < $1 OR idle_expires_at < $1 OR revoked_at IS NOT NULL',
    now,
  );
  const rateLimits = (await prisma.rateLimit.deleteMany({ where: { resetAt: { lte: now } } })).count;
  const unusedSince = new Date(now.getTime() - unusedClientTtl * 1000);
  const clients = await deleteInBatches(
    prisma,
    'clients',
    `kind = 'DYNAMIC' AND COALESCE(last_used_at, created_at) < $1`,
    unusedSince,
  );
  // Instances keep client rows in memory until a change notification (oauth/clients.ts).
  if (clients > 0) await notifyChange(prisma, 'client');
  // Spent links go with expired ones: neither can set a password any more.
  const passwordLinks = await deleteInBatches(
    prisma,
    'password_tokens',
    'expires_at < $1 OR used_at IS NOT NULL',
    now,
  );
  // Upstream sign-in flows an hour past their expiry; upstream logins revoked a day ago, or a day old with no live
  // session and no unrevoked grant left on them (spec federation §5.2). $1 is a day ago, so `$1 + 1 day` is now.
  const upstreamFlows = await deleteInBatches(
    prisma,
    'upstream_flows',
    'expires_at < $1',
    new Date(now.getTime() - 3_600_000),
  );
  const upstreamLogins = await deleteInBatches(
    prisma,
    'upstream_logins',
    `(revoked_at IS NOT NULL AND revoked_at < $1)
       OR (created_at < $1
         AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.upstream_login_id = upstream_logins.id
           AND s.revoked_at IS NULL AND s.expires_at > $1 + interval '1 day'
           AND s.idle_expires_at > $1 + interval '1 day')
         AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.upstream_login_id = upstream_logins.id
           AND g.revoked_at IS NULL))`,
    codeCutoff,
  );
  return {
    authorizationCodes,
    accessTokens,
    refreshTokens,
    refreshReplays,
    grants,
    sessions,
    rateLimits,
    clients,
    passwordLinks,
    upstreamFlows,
    upstreamLogins,
  };
}
