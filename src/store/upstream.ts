// Upstream sign-in storage: identities (the link between a provider account and a local user), the flows under
// way (single use through one conditional update), and one login per successful upstream sign-in holding its
// tokens already encrypted by the caller (src/upstream/crypto.ts). Revoking a login cascades in one transaction to
// the grants and sessions made from it, and announces the change; the caller then flushes (ctx.changes.flush()).
import type {
  Prisma,
  PrismaClient,
  UpstreamFlow,
  UpstreamIdentity,
  UpstreamLogin,
  User,
} from '../generated/prisma/client.ts';
import { notifyChange } from './changes.ts';
import { revokeGrantTx, type Tx } from './tokens.ts';

export type LoginRevokeReason = 'upstream_invalid_grant' | 'upstream_expired' | 'unlinked' | 'operator';

export interface NewFlow {
  id: string;
  stateHash: string;
  provider: string;
  browserHash: string;
  returnTo: string;
  verifierEnc: string | null;
  nonceEnc: string | null;
  createdAt: Date;
  expiresAt: Date;
}

/** The upstream account as the provider described it (spec federation §3.5). */
export interface IdentityFacts {
  provider: string;
  subject: string;
  email: string | null;
  emailVerified: boolean;
}

export interface NewLogin {
  /** Generated before insert: the encryption AAD names it. */
  id: string;
  provider: string;
  scopes: string[];
  claims: Prisma.InputJsonValue;
  accessTokenEnc: string;
  refreshTokenEnc: string | null;
  keyId: string;
  accessExpiresAt: Date | null;
  refreshExpiresAt: Date | null;
}

/** Who the sign-in is for: a known identity, an existing user to link, or a user to create. */
export type SignInAccount =
  | { kind: 'identity'; identityId: string; userId: string }
  | { kind: 'link'; userId: string }
  | { kind: 'create'; email: string; name: string | null };

/** What a cascade changed, so the caller can flush caches and log. */
export interface CascadeResult {
  grants: number;
  sessions: number;
}

export type IdentityWithUser = UpstreamIdentity & { user: User };

async function cascadeLogins(
  tx: Tx,
  loginIds: string[],
  reason: 'upstream_revoked' | 'upstream_unlinked',
  now: Date,
): Promise<CascadeResult> {
  if (loginIds.length === 0) return { grants: 0, sessions: 0 };
  const grants = await tx.grant.findMany({
    where: { upstreamLoginId: { in: loginIds }, revokedAt: null },
    select: { id: true },
  });
  for (const g of grants) await revokeGrantTx(tx, g.id, reason, now);
  const sessions = await tx.session.updateMany({
    where: { upstreamLoginId: { in: loginIds }, revokedAt: null },
    data: { revokedAt: now },
  });
  await notifyChange(tx, 'grant');
  return { grants: grants.length, sessions: sessions.count };
}

export function upstreamStore(prisma: PrismaClient) {
  return {
    async createFlow(flow: NewFlow): Promise<void> {
      await prisma.upstreamFlow.create({ data: flow });
    },

    /** Spends the flow with this state hash: the row the first time, null when unknown, spent or expired. */
    async consumeFlow(stateHash: string, now: Date): Promise<UpstreamFlow | null> {
      const claimed = await prisma.upstreamFlow.updateMany({
        where: { stateHash, usedAt: null, expiresAt: { gt: now } },
        data: { usedAt: now },
      });
      if (claimed.count !== 1) return null;
      return prisma.upstreamFlow.findUnique({ where: { stateHash } });
    },

    findIdentity(provider: string, subject: string): Promise<IdentityWithUser | null> {
      return prisma.upstreamIdentity.findUnique({
        where: { provider_subject: { provider, subject } },
        include: { user: true },
      });
    },

    findIdentityOfUser(userId: string, provider: string): Promise<UpstreamIdentity | null> {
      return prisma.upstreamIdentity.findUnique({ where: { userId_provider: { userId, provider } } });
    },

    /**
     * In one transaction: the user (created when asked), the identity (inserted or refreshed: email, email_verified,
     * last_sign_in_at; users.email is never touched), and the login. Returns the user and login ids.
     */
    completeSignIn(
      account: SignInAccount,
      facts: IdentityFacts,
      login: NewLogin,
      now: Date,
    ): Promise<{ userId: string; identityId: string; loginId: string }> {
      return prisma.$transaction(async (tx) => {
        const identityData = { email: facts.email, emailVerified: facts.emailVerified, lastSignInAt: now };
        let userId: string;
        let identityId: string;
        if (account.kind === 'identity') {
          await tx.upstreamIdentity.update({ where: { id: account.identityId }, data: identityData });
          userId = account.userId;
          identityId = account.identityId;
        } else {
          userId =
            account.kind === 'link'
              ? account.userId
              : (await tx.user.create({ data: { email: account.email, name: account.name } })).id;
          const identity = await tx.upstreamIdentity.create({
            data: {
              userId,
              provider: facts.provider,
              subject: facts.subject,
              ...identityData,
              createdAt: now,
            },
          });
          identityId = identity.id;
        }
        await tx.upstreamLogin.create({
          data: { ...login, identityId, createdAt: now, refreshedAt: now },
        });
        return { userId, identityId, loginId: login.id };
      });
    },

    findLogin(id: string): Promise<UpstreamLogin | null> {
      return prisma.upstreamLogin.findUnique({ where: { id } });
    },

    /**
     * Revokes a login and, in the same transaction, every unrevoked grant made from it (reason 'upstream_revoked')
     * and every session signed in with it. `revoked` is false when it was already revoked or does not exist.
     */
    revokeLogin(
      id: string,
      reason: LoginRevokeReason,
      now: Date,
    ): Promise<CascadeResult & { revoked: boolean }> {
      return prisma.$transaction(async (tx) => {
        const done = await tx.upstreamLogin.updateMany({
          where: { id, revokedAt: null },
          data: { revokedAt: now, revokedReason: reason },
        });
        // Grants made from it after all are revoked too, even when the login was revoked before.
        const result = await cascadeLogins(tx, [id], 'upstream_revoked', now);
        return { ...result, revoked: done.count === 1 };
      });
    },

    /** Explicit link by the operator; false when the user already has an identity at that provider, or the subject is taken. */
    async link(userId: string, provider: string, subject: string, now: Date): Promise<boolean> {
      const taken = await prisma.upstreamIdentity.findFirst({
        where: {
          OR: [
            { provider, subject },
            { userId, provider },
          ],
        },
      });
      if (taken) return false;
      await prisma.upstreamIdentity.create({ data: { userId, provider, subject, createdAt: now } });
      return true;
    },

    /**
     * Removes the user's identity at a provider: its logins' grants revoked ('upstream_unlinked'), their sessions
     * ended, then the identity deleted (its logins cascade). Null when there is no such identity.
     */
    unlink(userId: string, provider: string, now: Date): Promise<CascadeResult | null> {
      return prisma.$transaction(async (tx) => {
        const identity = await tx.upstreamIdentity.findUnique({
          where: { userId_provider: { userId, provider } },
          include: { logins: { select: { id: true } } },
        });
        if (!identity) return null;
        const result = await cascadeLogins(
          tx,
          identity.logins.map((l) => l.id),
          'upstream_unlinked',
          now,
        );
        await tx.upstreamIdentity.delete({ where: { id: identity.id } });
        return result;
      });
    },

    /** Linked identities per provider id (including providers no longer configured). */
    async identityCounts(): Promise<Map<string, number>> {
      const rows = await prisma.upstreamIdentity.groupBy({ by: ['provider'], _count: { _all: true } });
      return new Map(rows.map((r) => [r.provider, r._count._all]));
    },

    /** Up to `limit` logins whose secrets are under another key than `kid` (for `latchkey upstream rekey`). */
    loginsNotUnder(kid: string, limit: number, after?: string) {
      return prisma.upstreamLogin.findMany({
        where: { keyId: { not: kid }, ...(after ? { id: { gt: after } } : {}) },
        select: { id: true, keyId: true, accessTokenEnc: true, refreshTokenEnc: true },
        orderBy: { id: 'asc' },
        take: limit,
      });
    },

    /** Rewrites a login's secrets under a new key, only if nothing (a refresh) rewrote them since they were read. */
    async rekeyLogin(
      id: string,
      from: { keyId: string; accessTokenEnc: string },
      to: { keyId: string; accessTokenEnc: string; refreshTokenEnc: string | null },
    ): Promise<boolean> {
      const done = await prisma.upstreamLogin.updateMany({
        where: { id, keyId: from.keyId, accessTokenEnc: from.accessTokenEnc },
        data: to,
      });
      return done.count === 1;
    },

    /** Unrevoked logins per provider and key id (rotation: remove a key once nothing is under it). */
    async loginKeyCounts(): Promise<{ provider: string; keyId: string; count: number }[]> {
      const rows = await prisma.upstreamLogin.groupBy({
        by: ['provider', 'keyId'],
        where: { revokedAt: null },
        _count: { _all: true },
      });
      return rows.map((r) => ({ provider: r.provider, keyId: r.keyId, count: r._count._all }));
    },
  };
}

export type UpstreamStore = ReturnType<typeof upstreamStore>;
