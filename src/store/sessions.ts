// Browser sessions on Latchkey's pages. The cookie carries a random 256-bit id; only its SHA-256 is stored.
// A session ends at its absolute expiry, after SESSION_IDLE_TTL without use, or when revoked (sign-out).
import type { PrismaClient, Session, User } from '../generated/prisma/client.ts';
import { addSeconds } from '../lib/clock.ts';
import { hashSecret, randomToken } from '../lib/crypto.ts';

export interface SessionLifetimes {
  idleTtl: number;
  absoluteTtl: number;
}

// Extending the idle expiry on every request would write on every page view; once a minute is plenty.
const TOUCH_INTERVAL_MS = 60_000;

export function sessionStore(prisma: PrismaClient) {
  return {
    /** Starts a session and returns the cookie value (shown once, never stored). */
    async create(userId: string, now: Date, life: SessionLifetimes, userAgent?: string): Promise<string> {
      const token = randomToken(32);
      await prisma.session.create({
        data: {
          tokenHash: hashSecret(token),
          userId,
          createdAt: now,
          lastSeenAt: now,
          idleExpiresAt: addSeconds(now, life.idleTtl),
          expiresAt: addSeconds(now, life.absoluteTtl),
          userAgent: userAgent?.slice(0, 300) ?? null,
        },
      });
      return token;
    },

    /** The live session and its (enabled) user for a cookie value, sliding the idle expiry; null otherwise. */
    async findLive(
      token: string,
      now: Date,
      life: SessionLifetimes,
    ): Promise<(Session & { user: User }) | null> {
      const s = await prisma.session.findUnique({
        where: { tokenHash: hashSecret(token) },
        include: { user: true },
      });
      if (!s || s.revokedAt || s.expiresAt <= now || s.idleExpiresAt <= now || s.user.disabled) return null;
      if (now.getTime() - s.lastSeenAt.getTime() > TOUCH_INTERVAL_MS) {
        const idle = addSeconds(now, life.idleTtl);
        const idleExpiresAt = idle < s.expiresAt ? idle : s.expiresAt;
        await prisma.session.update({ where: { id: s.id }, data: { lastSeenAt: now, idleExpiresAt } });
      }
      return s;
    },

    async revoke(token: string, now: Date): Promise<void> {
      await prisma.session.updateMany({
        where: { tokenHash: hashSecret(token), revokedAt: null },
        data: { revokedAt: now },
      });
    },
  };
}

export type SessionStore = ReturnType<typeof sessionStore>;
