// Fixed-window counters in the database, so a limit holds across every instance behind a load balancer.
import type { PrismaClient } from '../generated/prisma/client.ts';
import { hashSecret } from '../lib/crypto.ts';

/**
 * The stored form of a counter's key `kind:subject`: the kind, then the SHA-256 of the whole key. Subjects come from
 * clients (an address from X-Forwarded-For, an email), so the stored key has a fixed size whatever they send (a
 * 7,000-character header once overflowed the index), and the table lists no addresses or emails.
 */
export function rateLimitKey(key: string): string {
  const kind = /^[a-z][a-z0-9-]{0,31}(?=:)/.exec(key)?.[0] ?? 'key';
  return `${kind}:${hashSecret(key)}`;
}

export interface RateLimitResult {
  allowed: boolean;
  hits: number;
  resetAt: Date;
}

export function rateLimitStore(prisma: PrismaClient) {
  return {
    /**
     * Counts one hit against `key` in a window of `windowSeconds` and says whether it is within `limit`.
     * One atomic upsert: a window that has ended restarts at 1.
     */
    async hit(rawKey: string, limit: number, windowSeconds: number, now: Date): Promise<RateLimitResult> {
      const key = rateLimitKey(rawKey);
      const resetAt = new Date(now.getTime() + windowSeconds * 1000);
      const rows = await prisma.$queryRaw<{ hits: number; reset_at: Date }[]>`
        INSERT INTO rate_limits (key, hits, reset_at) VALUES (${key}, 1, ${resetAt})
        ON CONFLICT (key) DO UPDATE SET
          hits = CASE WHEN rate_limits.reset_at <= ${now} THEN 1 ELSE rate_limits.hits + 1 END,
          reset_at = CASE WHEN rate_limits.reset_at <= ${now} THEN ${resetAt} ELSE rate_limits.reset_at END
        RETURNING hits, reset_at`;
      const row = rows[0]!;
      return { allowed: row.hits <= limit, hits: row.hits, resetAt: new Date(row.reset_at) };
    },

    async reset(key: string): Promise<void> {
      await prisma.rateLimit.deleteMany({ where: { key: rateLimitKey(key) } });
    },
  };
}

export type RateLimitStore = ReturnType<typeof rateLimitStore>;
