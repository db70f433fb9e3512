// What happens to a person's account as a whole: one-time password links (an operator's invitation or reset; only
// their hashes are stored), disabling, enabling, deleting, and changing a password. Each change is one transaction;
// the ones that end access (disable, delete) revoke every session and grant at once and NOTIFY every instance
// (store/changes.ts), so /introspect answers `active: false` everywhere the moment they commit.
import type { PrismaClient, User } from '../generated/prisma/client.ts';
import { addSeconds } from '../lib/clock.ts';
import { hashSecret, randomToken } from '../lib/crypto.ts';
import { audit, OPERATOR } from './audit.ts';
import { notifyChange } from './changes.ts';
import type { Tx } from './tokens.ts';
import { normalizeEmail } from './users.ts';

export type PasswordLinkPurpose = 'invite' | 'reset';

/** Link secrets carry a prefix like tokens do (TOKEN_PREFIX), so a leaked one is recognisable in a scan. */
export const PASSWORD_LINK_PREFIX = 'lk_pw_';

/** What presenting a password link found: usable (with its person), or not (never says why to the page). */
export type PasswordLinkCheck =
  | { kind: 'valid'; user: User; purpose: PasswordLinkPurpose }
  | { kind: 'invalid' }
  | { kind: 'disabled' };

/**
 * Ends every session and grant of a user inside `tx` (and forgets their approvals): nothing of theirs stays live.
 * Returns how many grants ended (the user_disabled event says so; the grants get no event each).
 */
async function endAccessTx(tx: Tx, userId: string, now: Date): Promise<number> {
  await tx.session.updateMany({ where: { userId, revokedAt: null }, data: { revokedAt: now } });
  const grants = await tx.grant.findMany({ where: { userId, revokedAt: null }, select: { id: true } });
  const ids = grants.map((g) => g.id);
  if (ids.length > 0) {
    await tx.grant.updateMany({
      where: { id: { in: ids }, revokedAt: null },
      data: { revokedAt: now, revokedReason: 'operator' },
    });
    await tx.accessToken.updateMany({
      where: { grantId: { in: ids }, revokedAt: null },
      data: { revokedAt: now },
    });
    await tx.refreshToken.updateMany({
      where: { grantId: { in: ids }, revokedAt: null },
      data: { revokedAt: now },
    });
  }
  await tx.consent.deleteMany({ where: { userId } });
  return ids.length;
}

export function accountStore(prisma: PrismaClient) {
  return {
    /**
     * Creates a one-time link for a user; any older unused link of theirs stops working. Returns the link's secret
     * (shown once, stored hashed).
     */
    async createPasswordLink(
      userId: string,
      purpose: PasswordLinkPurpose,
      ttlSeconds: number,
      now: Date,
    ): Promise<{ token: string; expiresAt: Date }> {
      const token = randomToken(32, PASSWORD_LINK_PREFIX);
      const expiresAt = addSeconds(now, ttlSeconds);
      await prisma.$transaction(async (tx) => {
        await tx.passwordToken.updateMany({ where: { userId, usedAt: null }, data: { usedAt: now } });
        await tx.passwordToken.create({
          data: { tokenHash: hashSecret(token), userId, purpose, createdAt: now, expiresAt },
        });
        const action = purpose === 'invite' ? 'user_invited' : 'password_reset_issued';
        await audit(tx, { action, ...OPERATOR, subject: userId, at: now });
      });
      return { token, expiresAt };
    },

    /** Whether a link can still be used (unknown, spent and expired links are all `invalid`). */
    async checkPasswordLink(token: string, now: Date): Promise<PasswordLinkCheck> {
      if (!token.startsWith(PASSWORD_LINK_PREFIX) || token.length > 100) return { kind: 'invalid' };
      const row = await prisma.passwordToken.findUnique({
        where: { tokenHash: hashSecret(token) },
        include: { user: true },
      });
      if (!row || row.usedAt || row.expiresAt <= now) return { kind: 'invalid' };
      if (row.user.disabled) return { kind: 'disabled' };
      return { kind: 'valid', user: row.user, purpose: row.purpose === 'reset' ? 'reset' : 'invite' };
    },

    /**
     * Spends a link and sets the password it was for, ending the person's sessions (whoever knew the old password
     * is signed out). Of concurrent uses exactly one succeeds; the rest get null.
     */
    async usePasswordLink(token: string, passwordHash: string, now: Date): Promise<User | null> {
      if (!token.startsWith(PASSWORD_LINK_PREFIX) || token.length > 100) return null;
      return prisma.$transaction(async (tx) => {
        const tokenHash = hashSecret(token);
        const claimed = await tx.passwordToken.updateMany({
          where: { tokenHash, usedAt: null, expiresAt: { gt: now }, user: { disabled: false } },
          data: { usedAt: now },
        });
        if (claimed.count !== 1) return null;
        const row = await tx.passwordToken.findUniqueOrThrow({ where: { tokenHash } });
        await tx.session.updateMany({
          where: { userId: row.userId, revokedAt: null },
          data: { revokedAt: now },
        });
        return tx.user.update({ where: { id: row.userId }, data: { passwordHash } });
      });
    },

    /** A signed-in person's new password; every other session of theirs ends, `keepSessionId` stays. */
    async changePassword(
      userId: string,
      passwordHash: string,
      keepSessionId: string,
      now: Date,
    ): Promise<void> {
      await prisma.$transaction(async (tx) => {
        await tx.user.update({ where: { id: userId }, data: { passwordHash } });
        await tx.session.updateMany({
          where: { userId, revokedAt: null, id: { not: keepSessionId } },
          data: { revokedAt: now },
        });
        // Unused links would still set a password: a change supersedes them.
        await tx.passwordToken.updateMany({ where: { userId, usedAt: null }, data: { usedAt: now } });
      });
    },

    /**
     * Disables a user and, in the same transaction, ends their sessions, grants and remembered approvals; false when
     * there is no such user. Re-enabling later restores the account, not what it had approved.
     */
    async disable(email: string, now: Date): Promise<User | null> {
      return prisma.$transaction(async (tx) => {
        const user = await tx.user.findUnique({ where: { email: normalizeEmail(email) } });
        if (!user) return null;
        const updated = await tx.user.update({ where: { id: user.id }, data: { disabled: true } });
        const grants = await endAccessTx(tx, user.id, now);
        await tx.passwordToken.updateMany({
          where: { userId: user.id, usedAt: null },
          data: { usedAt: now },
        });
        await audit(tx, {
          action: 'user_disabled',
          ...OPERATOR,
          subject: user.id,
          detail: { grants },
          at: now,
        });
        await notifyChange(tx, 'user');
        return updated;
      });
    },

    enable(email: string, now = new Date()): Promise<User | null> {
      return prisma.$transaction(async (tx) => {
        const user = await tx.user.findUnique({ where: { email: normalizeEmail(email) } });
        if (!user) return null;
        const updated = await tx.user.update({ where: { id: user.id }, data: { disabled: false } });
        // Caches hold inactive answers too (docs/security.md: Caches): enabling notifies like disabling.
        await notifyChange(tx, 'user');
        await audit(tx, { action: 'user_enabled', ...OPERATOR, subject: user.id, at: now });
        return updated;
      });
    },

    /** Deletes a user and, by cascade, everything of theirs; the NOTIFY drops cached answers for their tokens. */
    async delete(email: string, now = new Date()): Promise<User | null> {
      return prisma.$transaction(async (tx) => {
        const user = await tx.user.findUnique({ where: { email: normalizeEmail(email) } });
        if (!user) return null;
        await tx.user.delete({ where: { id: user.id } });
        await audit(tx, { action: 'user_deleted', ...OPERATOR, subject: user.id, at: now });
        await notifyChange(tx, 'user');
        return user;
      });
    },
  };
}

export type AccountStore = ReturnType<typeof accountStore>;
