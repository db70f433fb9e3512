// Sign-in through an upstream provider, as a redirect sign-in method (src/signin/method.ts): `begin` is the start of
// spec federation §3.2, `finish` the callback of §3.3, each row in order, the first failure deciding the answer.
// Pages only ever show the fixed texts below; upstream error descriptions and bodies go to the log at warn, cut.
import { randomUUID } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import type { Prisma } from '../generated/prisma/client.ts';
import type { Clock } from '../lib/clock.ts';
import { addSeconds } from '../lib/clock.ts';
import { constantTimeEqual, hashSecret, randomToken } from '../lib/crypto.ts';
import type { BeginOutcome, RedirectSignInMethod, SignInInput, SignInOutcome } from '../signin/method.ts';
import type { Stores } from '../store/index.ts';
import { checkAllowLists, resolveAccount } from './accounts.ts';
import { loggable } from './http.ts';
import type { Upstream } from './index.ts';
import type { NormalizedIdentity, TokenSet, UpstreamProvider } from './providers/types.ts';

export const FLOW_TTL_SECONDS = 600;

export interface UpstreamSignInDeps {
  upstream: Upstream;
  stores: Pick<Stores, 'upstream' | 'users' | 'rateLimits'>;
  clock: Clock;
  /** LOGIN_MAX_ATTEMPTS_PER_ADDRESS per LOGIN_THROTTLE_WINDOW, for `upstream:start:<ip>`. */
  limits: { perAddress: number; windowSeconds: number };
}

/** The texts of §3.3; `name` is the provider's configured name. */
export const TEXT = {
  incomplete: 'This sign-in could not be completed. Start again.',
  expired: 'This sign-in link expired or was already used. Start again.',
  otherBrowser: 'This sign-in was started in another browser. Start again in this one.',
  cancelled: (name: string) => `Sign-in with ${name} was cancelled.`,
  upstreamError: (name: string, code: string) =>
    `${name} could not sign you in (${code}). Try again or use another way to sign in.`,
  generic: (name: string) => `${name} could not sign you in. Try again or use another way to sign in.`,
  mixUp: (name: string) => `This sign-in response did not come from ${name}.`,
  notResponding: (name: string) => `${name} is not responding. Try again in a moment.`,
  tookTooLong: 'Sign-in took too long or was already completed. Try again.',
  unverifiable: (name: string) => `${name} sent a sign-in we could not verify.`,
  disabled: 'This account cannot sign in here.',
};

const refused = (status: number, message: string, page: 'login' | 'error' = 'login'): SignInOutcome => ({
  kind: 'refused',
  status,
  message,
  page,
});

export function browserHash(browserSecret: string): string {
  return hashSecret(`upstream-bind:${browserSecret}`);
}

/** The claims snapshot kept on the login, in the shape of /introspect's `upstream` member (without `provider`). */
export function claimsSnapshot(identity: NormalizedIdentity): Prisma.InputJsonObject {
  return {
    sub: identity.subject,
    email: identity.email,
    email_verified: identity.emailVerified,
    name: identity.name,
    username: identity.username,
    // JSON from upstream answers (and our own strings): a JSON value by construction.
    claims: JSON.parse(JSON.stringify(identity.extra)) as Prisma.InputJsonObject,
  };
}

export function upstreamSignIn(provider: UpstreamProvider, deps: UpstreamSignInDeps): RedirectSignInMethod {
  const { upstream, stores, clock, limits } = deps;
  const { config } = provider;
  const name = config.name;
  const redirectUri = upstream.redirectUri(config.id);
  const flowSlot = (rowId: string, column: 'verifier_enc' | 'nonce_enc') =>
    ({ table: 'upstream_flows', column, rowId }) as const;
  const loginSlot = (rowId: string, column: 'access_token_enc' | 'refresh_token_enc') =>
    ({ table: 'upstream_logins', column, rowId }) as const;

  async function begin(input: SignInInput): Promise<BeginOutcome> {
    const now = clock.now();
    const hit = await stores.rateLimits.hit(
      `upstream:start:${input.ip}`,
      limits.perAddress,
      limits.windowSeconds,
      now,
    );
    if (!hit.allowed) return { kind: 'throttled', limit: 'address', until: hit.resetAt };
    const as = await provider.server();
    if (!as) return { kind: 'unavailable' };
    const state = randomToken(32);
    const verifier = config.pkce ? randomToken(32) : undefined;
    const nonce = provider.usesNonce ? randomToken(32) : undefined;
    const id = randomUUID();
    await stores.upstream.createFlow({
      id,
      stateHash: hashSecret(state),
      provider: config.id,
      browserHash: browserHash(input.browserSecret ?? ''),
      returnTo: input.returnTo,
      verifierEnc: verifier ? upstream.cipher.encrypt(verifier, flowSlot(id, 'verifier_enc')) : null,
      nonceEnc: nonce ? upstream.cipher.encrypt(nonce, flowSlot(id, 'nonce_enc')) : null,
      createdAt: now,
      expiresAt: addSeconds(now, FLOW_TTL_SECONDS),
    });
    const codeChallenge = verifier ? await oauth.calculatePKCECodeChallenge(verifier) : undefined;
    const url = provider.authorizeUrl(as, { redirectUri, state, codeChallenge, nonce });
    return { kind: 'redirect', location: url.href };
  }

  async function finish(input: SignInInput): Promise<SignInOutcome> {
    const log = input.log;
    const state = input.param('state');
    if (!state) return refused(400, TEXT.incomplete, 'error');
    const now = clock.now();
    const flow = await stores.upstream.consumeFlow(hashSecret(state), now);
    if (!flow) return refused(400, TEXT.expired, 'error');
    if (flow.provider !== config.id) {
      log.warn({ provider: config.id, flowProvider: flow.provider }, 'upstream callback at another provider');
      return refused(400, TEXT.incomplete, 'error');
    }
    const returnTo = flow.returnTo;
    const out = (o: SignInOutcome): SignInOutcome => ({ ...o, returnTo });
    if (!input.browserSecret || !constantTimeEqual(browserHash(input.browserSecret), flow.browserHash)) {
      log.warn({ provider: config.id }, 'upstream callback in another browser');
      return refused(400, TEXT.otherBrowser, 'error');
    }
    const error = input.param('error');
    if (error !== undefined) {
      log.warn(
        {
          provider: config.id,
          error: loggable(error),
          description: loggable(input.param('error_description')),
        },
        'upstream sign-in answered with an error',
      );
      if (error === 'access_denied') return out(refused(200, TEXT.cancelled(name)));
      return out(refused(502, TEXT.upstreamError(name, /^[a-z_]{1,40}$/.test(error) ? error : 'error')));
    }
    const as = await provider.server();
    if (!as) return out(refused(502, TEXT.notResponding(name)));
    const callback = new URLSearchParams();
    for (const key of ['code', 'state', 'iss', 'app_installation_id']) {
      const v = input.param(key);
      if (v !== undefined) callback.set(key, v);
    }
    const validated = provider.validateCallback(as, callback);
    if (!validated) {
      log.warn({ provider: config.id }, 'upstream callback iss missing or wrong (mix-up)');
      return refused(400, TEXT.mixUp(name), 'error');
    }
    if (!input.param('code')) return refused(400, TEXT.incomplete, 'error');

    const verifier = flow.verifierEnc
      ? upstream.cipher.decrypt(flow.verifierEnc, flowSlot(flow.id, 'verifier_enc'))
      : undefined;
    const nonce = flow.nonceEnc
      ? upstream.cipher.decrypt(flow.nonceEnc, flowSlot(flow.id, 'nonce_enc'))
      : undefined;
    const code = await provider.exchangeCode(as, validated, { redirectUri, verifier, nonce });
    let tokens: TokenSet;
    switch (code.kind) {
      case 'ok':
        tokens = code.tokens;
        break;
      case 'unavailable':
        log.warn({ provider: config.id, cause: code.reason }, 'upstream token endpoint not responding');
        return out(refused(502, TEXT.notResponding(name)));
      case 'invalid_grant':
        return out(refused(400, TEXT.tookTooLong));
      case 'client_error':
        log.error(
          { provider: config.id, error: code.error },
          `upstream rejected our client: check client_id/client_secret of provider ${config.id}`,
        );
        return out(refused(502, TEXT.generic(name)));
      case 'unverifiable':
        log.warn({ provider: config.id, cause: loggable(code.reason) }, 'upstream ID token did not verify');
        return out(refused(502, TEXT.unverifiable(name)));
      case 'failed':
        log.warn(
          { provider: config.id, error: loggable(code.error), cause: loggable(code.reason) },
          'upstream token request failed',
        );
        return out(refused(502, TEXT.generic(name)));
    }

    const fetched = await provider.fetchIdentity(as, tokens, validated);
    let identity: NormalizedIdentity;
    switch (fetched.kind) {
      case 'ok':
        identity = fetched.identity;
        break;
      case 'unavailable':
        log.warn({ provider: config.id, cause: fetched.reason }, 'upstream identity endpoint not responding');
        return out(refused(502, TEXT.notResponding(name)));
      case 'rejected':
        log.warn(
          { provider: config.id, cause: loggable(fetched.reason) },
          'upstream identity request refused',
        );
        return out(refused(502, TEXT.unverifiable(name)));
      case 'mismatch':
        log.error({ provider: config.id }, 'upstream userinfo sub differs from the ID token');
        return out(refused(502, TEXT.unverifiable(name)));
      case 'refused':
        // A policy refusal found with the tokens in hand (Plane installation, GitHub organizations): hand them back.
        await provider.revoke?.(tokens);
        return out(refused(fetched.status, fetched.message));
    }
    if (!identity.subject || identity.subject.length > 255) {
      log.warn({ provider: config.id }, 'upstream identity has no usable subject');
      return out(refused(502, TEXT.unverifiable(name)));
    }
    // Refused after the code exchange (rows 13–15): the tokens are never stored, and the provider is asked to forget
    // them (best effort, within the HTTP time limit).
    const refuse = async (status: number, message: string) => {
      await provider.revoke?.(tokens);
      return out(refused(status, message));
    };
    const blocked = checkAllowLists(config, identity);
    if (blocked) return refuse(blocked.status, blocked.message);
    const resolution = await resolveAccount(stores as Stores, config, identity);
    if (resolution.kind === 'refused') return refuse(resolution.status, resolution.message);
    if (resolution.disabled) return refuse(403, TEXT.disabled);

    const loginId = randomUUID();
    const done = await stores.upstream.completeSignIn(
      resolution.account,
      {
        provider: config.id,
        subject: identity.subject,
        email: identity.email,
        emailVerified: identity.emailVerified,
      },
      {
        id: loginId,
        provider: config.id,
        scopes: tokens.scopes ?? config.scopes,
        claims: claimsSnapshot(identity),
        accessTokenEnc: upstream.cipher.encrypt(tokens.accessToken, loginSlot(loginId, 'access_token_enc')),
        refreshTokenEnc: tokens.refreshToken
          ? upstream.cipher.encrypt(tokens.refreshToken, loginSlot(loginId, 'refresh_token_enc'))
          : null,
        keyId: upstream.cipher.currentKid,
        accessExpiresAt: tokens.expiresIn ? addSeconds(now, tokens.expiresIn) : null,
        refreshExpiresAt: tokens.refreshExpiresIn ? addSeconds(now, tokens.refreshExpiresIn) : null,
      },
      now,
    );
    if (resolution.linked)
      log.info({ userId: done.userId, provider: config.id }, 'upstream identity linked by verified email');
    if (resolution.account.kind === 'create')
      log.info({ userId: done.userId, provider: config.id }, 'user created from upstream sign-in');
    return { kind: 'signed_in', userId: done.userId, upstreamLoginId: done.loginId, returnTo };
  }

  return {
    id: config.id,
    kind: 'redirect',
    label: name,
    buttonLabel: `Sign in with ${name}`,
    formTargets: () => provider.formTargets(),
    begin,
    finish,
  };
}
