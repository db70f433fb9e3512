// The upstream tokens of a login as the token exchange uses them (spec federation §6.3): read a login, take the
// cross-instance refresh lease with one conditional UPDATE, store a refresh's result only while still holding the
// lease, and let the lease go. No transaction is ever held across an upstream call: each step is one statement.
// Values arrive here already encrypted (src/upstream/crypto.ts); this module never sees a plaintext token.
import type { PrismaClient, UpstreamLogin } from '../generated/prisma/client.ts';

export interface RefreshedLogin {
  accessTokenEnc: string;
  refreshTokenEnc: string | null;
  keyId: string;
  accessExpiresAt: Date | null;
  refreshExpiresAt: Date | null;
  scopes: string[];
  refreshedAt: Date;
}

export function upstreamTokenStore(prisma: PrismaClient) {
  return {
    findLogin(id: string): Promise<UpstreamLogin | null> {
      return prisma.upstreamLogin.findUnique({ where: { id } });
    },

    /**
     * Takes the refresh lease of a live login when nobody holds it or the holder's lease ran out (a crashed
     * instance). One UPDATE: of any number of instances racing, exactly one gets it. `seenAccessTokenEnc` is the
     * access token ciphertext the caller read (a fresh IV on every write, so it names one version of the row): a
     * holder that refreshed and let the lease go in between has changed it, and the lease is not taken, so nobody
     * refreshes again with a refresh token the upstream has already rotated.
     */
    async takeLease(
      id: string,
      holder: string,
      until: Date,
      now: Date,
      seenAccessTokenEnc: string,
    ): Promise<boolean> {
      const r = await prisma.upstreamLogin.updateMany({
        where: {
          id,
          revokedAt: null,
          accessTokenEnc: seenAccessTokenEnc,
          OR: [{ refreshLeaseUntil: null }, { refreshLeaseUntil: { lt: now } }],
        },
        data: { refreshLeaseUntil: until, refreshLeaseHolder: holder },
      });
      return r.count === 1;
    },

    /** Stores a refresh's outcome and lets the lease go, only while `holder` still holds it. */
    async storeRefreshed(id: string, holder: string, data: RefreshedLogin): Promise<boolean> {
      const r = await prisma.upstreamLogin.updateMany({
        where: { id, refreshLeaseHolder: holder, revokedAt: null },
        data: { ...data, refreshLeaseUntil: null, refreshLeaseHolder: null },
      });
      return r.count === 1;
    },

    /** Lets the lease go without changing the tokens (the upstream was unavailable, or refused the client). */
    async releaseLease(id: string, holder: string): Promise<void> {
      await prisma.upstreamLogin.updateMany({
        where: { id, refreshLeaseHolder: holder },
        data: { refreshLeaseUntil: null, refreshLeaseHolder: null },
      });
    },
  };
}

export type UpstreamTokenStore = ReturnType<typeof upstreamTokenStore>;
