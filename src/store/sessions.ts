// Browser sessions on Latchkey's pages. The cookie carries a random 256-bit id; only its SHA-256 is stored.
// A session ends at its absolute expiry, after SESSION_IDLE_TTL without use, or when revoked (sign-out).
import type { PrismaClient, Session, UpstreamLogin, User } from '../generated/prisma/client.ts';
import { addSeconds } from '../lib/clock.ts';
import { hashSecret, randomToken } from '../lib/crypto.ts';
import { audit } from './audit.ts';

export interface SessionLifetimes {
  idleTtl: number;
  absoluteTtl: number;
}

/** What pages need of a session's upstream sign-in: never its tokens. */
const UPSTREAM_LOGIN_SUMMARY = { id: true, provider: true, claims: true, revokedAt: true } as const;

export type UpstreamLoginSummary = Pick<UpstreamLogin, 'id' | 'provider' | 'claims' | 'revokedAt'>;
export type LiveSessionRow = Session & { user: User; upstreamLogin: UpstreamLoginSummary | null };

// Extending the idle expiry on every request would write on every page view; once a minute is plenty.
const TOUCH_INTERVAL_MS = 60_000;

export function sessionStore(prisma: PrismaClient) {
  return {
    /**
     * Starts a session and returns the cookie value (shown once, never stored). `signIn`: the sign-in it records in
     * the audit trail, in the same transaction.
     */
    async create(
      userId: string,
      now: Date,
      life: SessionLifetimes,
      userAgent?: string,
      upstreamLoginId?: string,
      signIn?: { method: string; address: string },
    ): Promise<string> {
      const token = randomToken(32);
      await prisma.$transaction(async (tx) => {
        if (signIn) {
          const { method, address } = signIn;
          await audit(tx, {
            action: 'sign_in',
            actor: `user:${userId}`,
            subject: userId,
            address,
            detail: { method },
            at: now,
          });
        }
        await tx.session.create({
          data: {
            tokenHash: hashSecret(token),
            userId,
            createdAt: now,
            lastSeenAt: now,
            idleExpiresAt: addSeconds(now, life.idleTtl),
            expiresAt: addSeconds(now, life.absoluteTtl),
            userAgent: userAgent?.slice(0, 300) ?? null,
            upstreamLoginId: upstreamLoginId ?? null,
          },
        });
      });
      return token;
    },

    /** The live session and its (enabled) user for a cookie value, sliding the idle expiry; null otherwise. */
    async findLive(token: string, now: Date, life: SessionLifetimes): Promise<LiveSessionRow | null> {
      const s = await prisma.session.findUnique({
        where: { tokenHash: hashSecret(token) },
        include: { user: true, upstreamLogin: { select: UPSTREAM_LOGIN_SUMMARY } },
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
