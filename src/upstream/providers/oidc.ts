// Generic OpenID Connect (also the base of the Google preset): metadata from `issuer/.well-known/openid-configuration`
// (cached 1 h, the last good copy kept up to 24 h when a fetch fails), code + PKCE + nonce, the ID token validated by
// oauth4webapi (iss, aud, azp, exp/iat against ctx.clock, nonce; the signature relies on TLS, OIDC Core §3.1.3.7),
// claims merged with userinfo whose `sub` must match.
import * as oauth from 'oauth4webapi';
import type { OidcProvider } from '../config.ts';
import { requestOptions, UpstreamUnreachable } from '../http.ts';
import {
  authorizeUrl,
  clientOf,
  exchangeCode,
  isInsecureAllowed,
  refresh,
  revokeAt,
  validateCallback,
} from './base.ts';
import type {
  IdentityOutcome,
  NormalizedIdentity,
  ProviderDeps,
  TokenSet,
  UpstreamProvider,
} from './types.ts';

const FRESH_MS = 3600_000;
const STALE_MS = 24 * 3600_000;

/** `true` or the string "true" only: Google has sent the string "false", which a truthiness check takes for true. */
export function isVerified(value: unknown): boolean {
  return value === true || value === 'true';
}

/** ID token claims merged with userinfo (userinfo wins), normalized (spec federation §3.5). */
export function normalizeOidcClaims(
  claims: Record<string, unknown>,
  config: Pick<OidcProvider, 'type' | 'exposeClaims'>,
): NormalizedIdentity {
  const text = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : null);
  const extra: Record<string, unknown> = {};
  for (const name of config.exposeClaims) if (claims[name] !== undefined) extra[name] = claims[name];
  if (config.type === 'google' && typeof claims.hd === 'string') extra.hd = claims.hd;
  const sub = claims.sub;
  return {
    subject: typeof sub === 'string' ? sub : typeof sub === 'number' ? String(sub) : '',
    email: text(claims.email)?.toLowerCase() ?? null,
    emailVerified: isVerified(claims.email_verified),
    name: text(claims.name),
    username: text(claims.preferred_username),
    extra,
  };
}

export function oidcProvider(config: OidcProvider, deps: ProviderDeps): UpstreamProvider {
  const issuer = new URL(config.issuer);
  const insecure = isInsecureAllowed(deps, config.issuer);
  let cached: { as: oauth.AuthorizationServer; at: number } | undefined;
  let inFlight: Promise<oauth.AuthorizationServer> | undefined;

  const fetchMetadata = async () => {
    const res = await oauth.discoveryRequest(issuer, {
      algorithm: 'oidc',
      ...requestOptions(deps.fetch, insecure),
    });
    return oauth.processDiscoveryResponse(issuer, res);
  };

  const server = async (): Promise<oauth.AuthorizationServer | undefined> => {
    const now = deps.clock.now().getTime();
    if (cached && now - cached.at < FRESH_MS) return cached.as;
    try {
      inFlight ??= fetchMetadata().finally(() => {
        inFlight = undefined;
      });
      const as = await inFlight;
      cached = { as, at: now };
      return as;
    } catch (err) {
      deps.log.warn(
        { provider: config.id, cause: err instanceof Error ? err.message : String(err) },
        'upstream metadata could not be fetched',
      );
      return cached && now - cached.at < STALE_MS ? cached.as : undefined;
    }
  };

  const fetchIdentity = async (as: oauth.AuthorizationServer, tokens: TokenSet): Promise<IdentityOutcome> => {
    const idClaims = tokens.idTokenClaims ?? {};
    let merged: Record<string, unknown> = { ...idClaims };
    if (as.userinfo_endpoint) {
      const client = clientOf(config, deps);
      let res: Response;
      try {
        res = await oauth.userInfoRequest(
          as,
          client,
          tokens.accessToken,
          requestOptions(deps.fetch, isInsecureAllowed(deps, as.userinfo_endpoint)),
        );
      } catch (err) {
        if (err instanceof UpstreamUnreachable) return { kind: 'unavailable', reason: err.message };
        throw err;
      }
      if (res.status >= 500 || res.status === 429)
        return { kind: 'unavailable', reason: `status ${res.status}` };
      if (res.status !== 200) return { kind: 'rejected', reason: `userinfo status ${res.status}` };
      try {
        const expected = typeof idClaims.sub === 'string' ? idClaims.sub : oauth.skipSubjectCheck;
        merged = { ...merged, ...(await oauth.processUserInfoResponse(as, client, expected, res)) };
      } catch (err) {
        if (err instanceof oauth.OperationProcessingError && err.code === oauth.JSON_ATTRIBUTE_COMPARISON)
          return { kind: 'mismatch' };
        return { kind: 'rejected', reason: (err as Error).message };
      }
    }
    return { kind: 'ok', identity: normalizeOidcClaims(merged, config) };
  };

  return {
    config,
    usesNonce: true,
    // The issuer's origin always (before any metadata is cached, the best guess), and the cached endpoint's origin.
    formTargets: () => [
      ...new Set([
        issuer.origin,
        ...(cached ? [new URL(cached.as.authorization_endpoint ?? config.issuer).origin] : []),
      ]),
    ],
    server,
    authorizeUrl: (as, p) => authorizeUrl(config, as, p),
    validateCallback: (as, callback) => validateCallback(config, deps, as, callback),
    exchangeCode: (as, callback, p) => exchangeCode(config, deps, as, callback, p, true),
    fetchIdentity,
    refresh: async (refreshToken) => refresh(config, deps, await server(), refreshToken),
    revoke: async (tokens) => revokeAt(config, deps, cached?.as, tokens),
  };
}
