// The upstream access token for a resource server (spec federation §6.2 from the subject token on, and §6.3): the
// checks in order, then a fresh token — the stored one while it has more than 60 s left, otherwise a refresh at the
// provider. Concurrent exchanges for one login share one refresh: one promise per login in this process, and a lease
// in the database across instances (src/store/upstream-tokens.ts). The upstream's answer decides: invalid_grant (or
// nothing left to refresh with) revokes the login and, in the same transaction, every grant and session made from
// it; the change reaches every instance before the caller hears of it. Outages and misconfiguration revoke nothing.
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../context.ts';
import type { ResourceServer, UpstreamLogin } from '../generated/prisma/client.ts';
import type { Clock } from '../lib/clock.ts';
import {
  invalidGrant,
  invalidTarget,
  type OAuthError,
  serverError,
  temporarilyUnavailable,
  unauthorizedClient,
} from '../oauth/errors.ts';
import type { TokenStore } from '../store/tokens.ts';
import type { UpstreamTokenStore } from '../store/upstream-tokens.ts';
import { type UpstreamCipher, UpstreamSecretError } from './crypto.ts';
import type { RefreshOutcome } from './providers/types.ts';
import { isFresh, type LeaseDeps, RefreshEnded, refreshUnderLease } from './refresh.ts';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface ExchangeLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** RFC 8693 §2.2.1. */
export interface ExchangeAnswer {
  access_token: string;
  issued_token_type: typeof ACCESS_TOKEN_TYPE;
  token_type: 'Bearer';
  expires_in?: number;
  scope?: string;
}

export interface ExchangeDeps {
  tokens: Pick<TokenStore, 'findAccessToken'>;
  upstreamTokens: UpstreamTokenStore;
  /** Revokes a login with the cascade of §7 (grants, sessions) and announces it; true when it was live. */
  revokeLogin(id: string, reason: 'upstream_invalid_grant' | 'upstream_expired', now: Date): Promise<unknown>;
  /** Resolves once every instance knows of this instance's revocations. */
  flushChanges(): Promise<void>;
  /** Whether a provider id is configured now. */
  providerConfigured(id: string): boolean;
  /** The refresh request of a provider (§6.3 step 4), its outcome classified. */
  refresh(providerId: string, refreshToken: string): Promise<RefreshOutcome>;
  cipher: () => UpstreamCipher;
  clock: Clock;
  /** Seconds for each upstream call (UPSTREAM_HTTP_TIMEOUT). */
  httpTimeout: number;
}

export interface UpstreamExchange {
  exchange(
    caller: ResourceServer,
    subjectToken: string,
    audience: string | undefined,
    log: ExchangeLog,
  ): Promise<ExchangeAnswer>;
}

const NOT_ACTIVE = 'the subject token is not active';
const EXPIRED = 'the upstream sign-in has expired; sign in again';

export function createUpstreamExchange(deps: ExchangeDeps): UpstreamExchange {
  const { clock } = deps;
  // One refresh per login in this process; every concurrent exchange for it awaits the same promise.
  const inFlight = new Map<string, Promise<UpstreamLogin>>();
  const lease: LeaseDeps = { ...deps, holder: `${process.pid}-${randomUUID()}` };

  function secretFailure(err: UpstreamSecretError, log: ExchangeLog): OAuthError {
    log.error(err.logFields, 'an upstream token cannot be decrypted (check UPSTREAM_TOKEN_KEYS)');
    return serverError('the upstream token cannot be read');
  }

  async function freshLogin(login: UpstreamLogin, log: ExchangeLog): Promise<UpstreamLogin> {
    if (isFresh(login, clock.now())) return login;
    let pending = inFlight.get(login.id);
    if (!pending) {
      pending = refreshUnderLease(lease, login.id, log).finally(() => inFlight.delete(login.id));
      inFlight.set(login.id, pending);
    }
    try {
      return await pending;
    } catch (err) {
      if (err instanceof UpstreamSecretError) throw secretFailure(err, log);
      if (!(err instanceof RefreshEnded)) throw err;
      switch (err.outcome) {
        case 'invalid_grant':
          throw invalidGrant('the upstream authorization was revoked; sign in again');
        case 'expired':
        case 'revoked':
          throw invalidGrant(EXPIRED);
        case 'unavailable':
          throw temporarilyUnavailable('the upstream provider is not responding; try again shortly', 5);
        default:
          throw serverError('the upstream provider refused the refresh');
      }
    }
  }

  return {
    async exchange(caller, subjectToken, audience, log) {
      const now = clock.now();
      const at = subjectToken.startsWith('lk_at_') ? await deps.tokens.findAccessToken(subjectToken) : null;
      // One answer for every way a subject token is unusable, so nothing is revealed about other callers' tokens.
      if (
        !at ||
        at.revokedAt ||
        at.expiresAt <= now ||
        at.grant.revokedAt ||
        at.grant.user?.disabled ||
        at.grant.resourceServerId !== caller.id
      ) {
        throw invalidGrant(NOT_ACTIVE);
      }
      const loginId = at.grant.upstreamLoginId;
      const login = loginId ? await deps.upstreamTokens.findLogin(loginId) : null;
      if (!login || login.revokedAt) throw invalidGrant('no upstream sign-in is behind this token');
      if (audience !== undefined && audience !== login.provider) {
        throw invalidTarget('audience does not name the provider of this sign-in');
      }
      if (!caller.upstreamTokenProviders.includes(login.provider)) {
        throw unauthorizedClient(`this resource server may not obtain ${login.provider} tokens`);
      }
      if (!deps.providerConfigured(login.provider)) {
        log.warn(
          { provider: login.provider, loginId: login.id },
          'token exchange for a provider no longer configured',
        );
        throw invalidGrant('the upstream provider is no longer configured');
      }
      const fresh = await freshLogin(login, log);
      let accessToken: string;
      try {
        accessToken = deps.cipher().decrypt(fresh.accessTokenEnc, {
          table: 'upstream_logins',
          column: 'access_token_enc',
          rowId: fresh.id,
        });
      } catch (err) {
        if (err instanceof UpstreamSecretError) throw secretFailure(err, log);
        throw err;
      }
      const answer: ExchangeAnswer = {
        access_token: accessToken,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: 'Bearer',
      };
      if (fresh.accessExpiresAt) {
        answer.expires_in = Math.max(
          0,
          Math.floor((fresh.accessExpiresAt.getTime() - clock.now().getTime()) / 1000),
        );
      }
      if (fresh.scopes.length) answer.scope = fresh.scopes.join(' ');
      return answer;
    },
  };
}

/** The exchange of an app, or undefined when no upstream provider is configured (the grant is then unsupported). */
export function upstreamExchangeOf(ctx: AppContext): UpstreamExchange | undefined {
  const { upstream, stores } = ctx;
  if (upstream.providers.length === 0) return undefined;
  return createUpstreamExchange({
    tokens: stores.tokens,
    upstreamTokens: stores.upstreamTokens,
    revokeLogin: (id, reason, now) => stores.upstream.revokeLogin(id, reason, now),
    flushChanges: () => ctx.changes.flush(),
    providerConfigured: (id) => upstream.provider(id) !== undefined,
    refresh: async (id, refreshToken) => {
      const provider = upstream.provider(id);
      if (!provider)
        return { kind: 'other', error: 'not_configured', reason: `provider ${id} is not configured` };
      return provider.refresh(refreshToken);
    },
    cipher: () => upstream.cipher,
    clock: ctx.clock,
    httpTimeout: ctx.config.upstreamHttpTimeout,
  });
}
