// Refreshing one login's upstream token across instances (spec federation §6.3 steps 1, 3–5). The instance that
// takes the lease (one conditional UPDATE) calls the provider and stores the result while it still holds the lease;
// the others re-read the row every 250 ms until a fresh token appears or the lease ends (at most the upstream timeout
// plus 5 s), then try once more to take it. A lease left by a crashed holder runs out and is taken over. No database
// transaction is held across the upstream call.
import { setTimeout as sleep } from 'node:timers/promises';
import type { UpstreamLogin } from '../generated/prisma/client.ts';
import type { Clock } from '../lib/clock.ts';
import type { RefreshedLogin, UpstreamTokenStore } from '../store/upstream-tokens.ts';
import type { SecretSlot, UpstreamCipher } from './crypto.ts';
import type { RefreshOutcome } from './providers/types.ts';

const FRESH_MARGIN_MS = 60_000;
const POLL_MS = 250;

export interface RefreshLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface LeaseDeps {
  upstreamTokens: UpstreamTokenStore;
  refresh(providerId: string, refreshToken: string): Promise<RefreshOutcome>;
  revokeLogin(id: string, reason: 'upstream_invalid_grant' | 'upstream_expired', now: Date): Promise<unknown>;
  flushChanges(): Promise<void>;
  cipher: () => UpstreamCipher;
  clock: Clock;
  httpTimeout: number;
  /** This process's lease holder id (random). */
  holder: string;
}

/** How a refresh ended without a fresh token. */
export class RefreshEnded extends Error {
  constructor(
    readonly outcome: 'expired' | 'invalid_grant' | 'revoked' | 'unavailable' | 'other',
    readonly reason?: string,
  ) {
    super(`upstream refresh ended: ${outcome}`);
    this.name = 'RefreshEnded';
  }
}

/** Fresh: no known expiry, or more than 60 s left by Latchkey's clock. */
export function isFresh(login: Pick<UpstreamLogin, 'accessExpiresAt'>, now: Date): boolean {
  return login.accessExpiresAt === null || login.accessExpiresAt.getTime() - now.getTime() > FRESH_MARGIN_MS;
}

const slot = (rowId: string, column: 'access_token_enc' | 'refresh_token_enc'): SecretSlot => ({
  table: 'upstream_logins',
  column,
  rowId,
});

const at = (now: Date, seconds: number) => new Date(now.getTime() + seconds * 1000);

/** A fresh version of the login, or RefreshEnded / UpstreamSecretError. */
export async function refreshUnderLease(
  deps: LeaseDeps,
  loginId: string,
  log: RefreshLog,
): Promise<UpstreamLogin> {
  const leaseSeconds = deps.httpTimeout + 5;
  for (let attempt = 0; attempt < 2; attempt++) {
    const login = await deps.upstreamTokens.findLogin(loginId);
    if (!login || login.revokedAt) throw new RefreshEnded('revoked');
    const now = deps.clock.now();
    if (isFresh(login, now)) return login;
    if (!login.refreshTokenEnc || (login.refreshExpiresAt && login.refreshExpiresAt <= now)) {
      await revoke(deps, login, 'upstream_expired', log);
      throw new RefreshEnded('expired');
    }
    const lease = at(now, leaseSeconds);
    if (await deps.upstreamTokens.takeLease(loginId, deps.holder, lease, now, login.accessTokenEnc)) {
      return refreshHeld(deps, login, log);
    }
    const fresh = await waitForHolder(deps, loginId, leaseSeconds);
    if (fresh) return fresh;
  }
  throw new RefreshEnded('unavailable', 'another instance holds the refresh lease');
}

/** Waits for another holder: a fresh login, or undefined once its lease ended (or the wait's bound passed). */
async function waitForHolder(
  deps: LeaseDeps,
  loginId: string,
  leaseSeconds: number,
): Promise<UpstreamLogin | undefined> {
  const deadline = Date.now() + leaseSeconds * 1000;
  while (Date.now() < deadline) {
    await sleep(POLL_MS);
    const login = await deps.upstreamTokens.findLogin(loginId);
    if (!login || login.revokedAt) throw new RefreshEnded('revoked');
    const now = deps.clock.now();
    if (isFresh(login, now)) return login;
    if (!login.refreshLeaseUntil || login.refreshLeaseUntil < now) return undefined;
  }
  return undefined;
}

async function refreshHeld(deps: LeaseDeps, login: UpstreamLogin, log: RefreshLog): Promise<UpstreamLogin> {
  const release = () => deps.upstreamTokens.releaseLease(login.id, deps.holder);
  let refreshToken: string;
  let outcome: RefreshOutcome;
  try {
    refreshToken = deps.cipher().decrypt(login.refreshTokenEnc!, slot(login.id, 'refresh_token_enc'));
    outcome = await deps.refresh(login.provider, refreshToken);
  } catch (err) {
    await release();
    throw err;
  }
  switch (outcome.kind) {
    case 'ok': {
      const tokens = outcome.tokens;
      const now = deps.clock.now();
      const cipher = deps.cipher();
      // Both columns are written under the current key (key_id covers both), the kept refresh token too.
      const data: RefreshedLogin = {
        accessTokenEnc: cipher.encrypt(tokens.accessToken, slot(login.id, 'access_token_enc')),
        refreshTokenEnc: cipher.encrypt(
          tokens.refreshToken ?? refreshToken,
          slot(login.id, 'refresh_token_enc'),
        ),
        keyId: cipher.currentKid,
        accessExpiresAt: tokens.expiresIn !== undefined ? at(now, tokens.expiresIn) : null,
        refreshExpiresAt:
          tokens.refreshExpiresIn !== undefined
            ? at(now, tokens.refreshExpiresIn)
            : tokens.refreshToken
              ? null
              : login.refreshExpiresAt,
        scopes: tokens.scopes?.length ? tokens.scopes : login.scopes,
        refreshedAt: now,
      };
      const stored = await deps.upstreamTokens.storeRefreshed(login.id, deps.holder, data);
      if (!stored)
        log.warn({ loginId: login.id }, 'upstream refresh finished after its lease was taken over');
      return { ...login, ...data, refreshLeaseUntil: null, refreshLeaseHolder: null };
    }
    case 'invalid_grant':
      await revoke(deps, login, 'upstream_invalid_grant', log);
      throw new RefreshEnded('invalid_grant');
    case 'unavailable':
      await release();
      log.warn(
        { loginId: login.id, provider: login.provider, reason: outcome.reason },
        'upstream refresh unavailable',
      );
      throw new RefreshEnded('unavailable', outcome.reason);
    default:
      await release();
      log.error(
        { loginId: login.id, provider: login.provider, error: outcome.error, reason: outcome.reason },
        'upstream refused the refresh (check the client_id/client_secret of this provider)',
      );
      throw new RefreshEnded('other', outcome.reason);
  }
}

/** Revokes the login with its grants and sessions, and waits until every instance knows (§7). */
async function revoke(
  deps: LeaseDeps,
  login: UpstreamLogin,
  reason: 'upstream_invalid_grant' | 'upstream_expired',
  log: RefreshLog,
): Promise<void> {
  await deps.revokeLogin(login.id, reason, deps.clock.now());
  await deps.flushChanges();
  // Warn, not info: the exchange logs at /introspect's quiet level, and this ends grants.
  log.warn(
    { loginId: login.id, provider: login.provider, reason },
    'upstream sign-in revoked with its grants',
  );
}
