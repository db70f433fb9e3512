// The OAuth 2 parts every provider shares, on oauth4webapi: the authorization URL, the RFC 9207 check, the code and
// refresh token requests with client authentication, and the classification of what the token endpoint answered.
import * as oauth from 'oauth4webapi';
import type { ProviderConfig, TokenAuthMethod } from '../config.ts';
import { requestOptions, UpstreamUnreachable } from '../http.ts';
import type {
  AuthorizeParams,
  CodeOutcome,
  ProviderDeps,
  RefreshOutcome,
  TokenSet,
  UpstreamProvider,
} from './types.ts';

const ID_TOKEN_SKEW = 60;

/** The oauth4webapi client, with the time of ctx.clock (ID token exp/iat) and 60 s tolerance. */
export function clientOf(config: ProviderConfig, deps: ProviderDeps): oauth.Client {
  return {
    client_id: config.clientId,
    [oauth.clockSkew]: Math.round((deps.clock.now().getTime() - Date.now()) / 1000),
    [oauth.clockTolerance]: ID_TOKEN_SKEW,
  };
}

export function authMethodFor(config: ProviderConfig, as: oauth.AuthorizationServer): TokenAuthMethod {
  if (config.tokenEndpointAuthMethod) return config.tokenEndpointAuthMethod;
  const listed = as.token_endpoint_auth_methods_supported ?? [];
  return listed.includes('client_secret_basic')
    ? 'client_secret_basic'
    : listed.includes('client_secret_post')
      ? 'client_secret_post'
      : 'client_secret_basic';
}

export function clientAuth(config: ProviderConfig, as: oauth.AuthorizationServer): oauth.ClientAuth {
  const method = authMethodFor(config, as);
  if (method === 'none') return oauth.None();
  const secret = config.clientSecret ?? '';
  return method === 'client_secret_post' ? oauth.ClientSecretPost(secret) : oauth.ClientSecretBasic(secret);
}

export function isInsecureAllowed(deps: ProviderDeps, ...urls: (string | undefined)[]): boolean {
  return deps.allowInsecureLoopback && urls.some((u) => u?.startsWith('http:'));
}

export function authorizeUrl(config: ProviderConfig, as: oauth.AuthorizationServer, p: AuthorizeParams): URL {
  const url = new URL(as.authorization_endpoint as string);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', config.clientId);
  url.searchParams.set('redirect_uri', p.redirectUri);
  if (config.scopes.length > 0) url.searchParams.set('scope', config.scopes.join(' '));
  url.searchParams.set('state', p.state);
  if (p.codeChallenge) {
    url.searchParams.set('code_challenge', p.codeChallenge);
    url.searchParams.set('code_challenge_method', 'S256');
  }
  if (p.nonce) url.searchParams.set('nonce', p.nonce);
  for (const [k, v] of Object.entries(config.extraAuthorizeParams)) url.searchParams.set(k, v);
  return url;
}

export function validateCallback(
  config: ProviderConfig,
  deps: ProviderDeps,
  as: oauth.AuthorizationServer,
  callback: URLSearchParams,
): URLSearchParams | undefined {
  try {
    // The state was matched already (by its hash, in the database): only the iss rules are checked here.
    return oauth.validateAuthResponse(as, clientOf(config, deps), callback, oauth.skipStateCheck);
  } catch {
    return undefined;
  }
}

/** The body of a 200 answer, when it is JSON. */
async function peekJson(res: Response): Promise<Record<string, unknown> | undefined> {
  try {
    const body = (await res.clone().json()) as unknown;
    return typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function tokenSet(r: oauth.TokenEndpointResponse): TokenSet {
  const num = (v: unknown) =>
    typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : undefined;
  return {
    accessToken: r.access_token,
    ...(typeof r.refresh_token === 'string' && r.refresh_token && { refreshToken: r.refresh_token }),
    ...(num(r.expires_in) && { expiresIn: num(r.expires_in) }),
    ...(num(r.refresh_token_expires_in ?? r.refresh_expires_in) && {
      refreshExpiresIn: num(r.refresh_token_expires_in ?? r.refresh_expires_in),
    }),
    ...(typeof r.scope === 'string' && { scopes: r.scope.split(/[\s,]+/).filter(Boolean) }),
  };
}

type Classified =
  | { kind: 'response'; response: Response }
  | { kind: 'unavailable'; reason: string }
  | { kind: 'error'; error: string; status: number }
  | { kind: 'malformed'; reason: string };

/** Sends a token request and sorts out what cannot be a token answer before oauth4webapi reads it. */
async function send(request: () => Promise<Response>): Promise<Classified> {
  let res: Response;
  try {
    res = await request();
  } catch (err) {
    if (err instanceof UpstreamUnreachable) return { kind: 'unavailable', reason: err.message };
    throw err;
  }
  if (res.status >= 500 || res.status === 429) return { kind: 'unavailable', reason: `status ${res.status}` };
  const body = await peekJson(res);
  // An OAuth error, including GitHub's 200-with-error answers.
  if (body && typeof body.error === 'string') return { kind: 'error', error: body.error, status: res.status };
  if (res.status !== 200) return { kind: 'malformed', reason: `status ${res.status}` };
  if (!body || typeof body.access_token !== 'string' || !body.access_token) {
    return { kind: 'malformed', reason: 'no access_token' };
  }
  if (typeof body.token_type !== 'string' || body.token_type.toLowerCase() !== 'bearer') {
    return { kind: 'malformed', reason: 'token_type is not bearer' };
  }
  return { kind: 'response', response: res };
}

export async function exchangeCode(
  config: ProviderConfig,
  deps: ProviderDeps,
  as: oauth.AuthorizationServer,
  callback: URLSearchParams,
  p: { redirectUri: string; verifier: string | undefined; nonce: string | undefined },
  oidc: boolean,
): Promise<CodeOutcome> {
  const client = clientOf(config, deps);
  const options = requestOptions(deps.fetch, isInsecureAllowed(deps, as.token_endpoint));
  const sent = await send(() =>
    oauth.authorizationCodeGrantRequest(
      as,
      client,
      clientAuth(config, as),
      callback,
      p.redirectUri,
      p.verifier ?? oauth.nopkce,
      options,
    ),
  );
  switch (sent.kind) {
    case 'unavailable':
      return sent;
    case 'malformed':
      return { kind: 'failed', reason: sent.reason };
    case 'error':
      if (sent.error === 'invalid_grant' || sent.error === 'bad_verification_code')
        return { kind: 'invalid_grant' };
      if (
        sent.error === 'invalid_client' ||
        sent.error === 'unauthorized_client' ||
        sent.error === 'incorrect_client_credentials'
      )
        return { kind: 'client_error', error: sent.error };
      return { kind: 'failed', error: sent.error, reason: `token endpoint answered ${sent.error}` };
  }
  try {
    const r = await oauth.processAuthorizationCodeResponse(as, client, sent.response, {
      expectedNonce: p.nonce ?? oauth.expectNoNonce,
      requireIdToken: oidc,
    });
    const tokens = tokenSet(r);
    const claims = oidc ? oauth.getValidatedIdTokenClaims(r) : undefined;
    return { kind: 'ok', tokens: claims ? { ...tokens, idTokenClaims: { ...claims } } : tokens };
  } catch (err) {
    // The answer held a bearer token (checked above): what failed is the ID token.
    return { kind: 'unverifiable', reason: (err as Error).message };
  }
}

export async function refresh(
  config: ProviderConfig,
  deps: ProviderDeps,
  as: oauth.AuthorizationServer | undefined,
  refreshToken: string,
): Promise<RefreshOutcome> {
  if (!as) return { kind: 'unavailable', reason: 'no metadata' };
  const client = clientOf(config, deps);
  const options = requestOptions(deps.fetch, isInsecureAllowed(deps, as.token_endpoint));
  const sent = await send(() =>
    oauth.refreshTokenGrantRequest(as, client, clientAuth(config, as), refreshToken, options),
  );
  switch (sent.kind) {
    case 'unavailable':
      return sent;
    case 'malformed':
      return { kind: 'other', error: 'invalid_response', reason: sent.reason };
    case 'error':
      // GitHub answers a dead refresh token with 200 {"error":"bad_refresh_token"}: the same fact.
      return (sent.error === 'invalid_grant' || sent.error === 'bad_refresh_token') && sent.status < 500
        ? { kind: 'invalid_grant' }
        : { kind: 'other', error: sent.error, reason: `status ${sent.status}` };
  }
  try {
    // An ID token in a refresh answer is not needed here; its absence is fine.
    return {
      kind: 'ok',
      tokens: tokenSet(await oauth.processRefreshTokenResponse(as, client, sent.response)),
    };
  } catch (err) {
    return { kind: 'other', error: 'invalid_response', reason: (err as Error).message };
  }
}

/** The parts of UpstreamProvider that a hand-built authorization server (Plane, GitHub, oauth2) shares. */
export function staticServerProvider(
  config: ProviderConfig,
  deps: ProviderDeps,
  as: oauth.AuthorizationServer,
): Pick<
  UpstreamProvider,
  | 'config'
  | 'usesNonce'
  | 'formTargets'
  | 'server'
  | 'authorizeUrl'
  | 'validateCallback'
  | 'exchangeCode'
  | 'refresh'
> {
  return {
    config,
    usesNonce: false,
    formTargets: () => [new URL(as.authorization_endpoint as string).origin],
    server: async () => as,
    authorizeUrl: (server, p) => authorizeUrl(config, server, p),
    validateCallback: (server, callback) => validateCallback(config, deps, server, callback),
    exchangeCode: (server, callback, p) => exchangeCode(config, deps, server, callback, p, false),
    refresh: (refreshToken) => refresh(config, deps, as, refreshToken),
  };
}

/** RFC 7009 at the server's revocation endpoint, when it has one: the refresh token (which ends the grant) or the access token. */
export async function revokeAt(
  config: ProviderConfig,
  deps: ProviderDeps,
  as: oauth.AuthorizationServer | undefined,
  tokens: TokenSet,
): Promise<void> {
  if (!as?.revocation_endpoint) return;
  const token = tokens.refreshToken ?? tokens.accessToken;
  try {
    const options = requestOptions(deps.fetch, isInsecureAllowed(deps, as.revocation_endpoint));
    await oauth.revocationRequest(as, clientOf(config, deps), clientAuth(config, as), token, options);
  } catch (err) {
    deps.log.warn({ provider: config.id, cause: (err as Error).message }, 'upstream token revocation failed');
  }
}
