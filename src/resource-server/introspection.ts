// Verifies bearer tokens by asking the authorization server's introspection endpoint (RFC 7662), with a short,
// bounded cache of positive answers. Negative answers are never cached, and a failed call is an error for the
// caller to turn into 503, never an "active" and never cached.
import { type KitClock, type ReadonlyTokenCache, TokenCache } from './cache.ts';
import { type ClientAuthMethod, clientFormRequest } from './client-request.ts';

export type { ClientAuthMethod } from './client-request.ts';

export interface IntrospectionVerifierOptions {
  /** Absolute URL of the authorization server's introspection endpoint, e.g. `https://auth.example.com/introspect`. */
  introspectionEndpoint: string;
  /** This resource server's credentials, as printed by `latchkey resource add` (RFC 7662 §2.1). */
  clientId: string;
  clientSecret: string;
  /** How the credentials are sent (RFC 6749 §2.3.1). Default `client_secret_basic`. */
  authMethod?: ClientAuthMethod;
  /** How long a positive answer is reused, capped by the token's `exp`. Default 30; 0 disables the cache. */
  cacheTtlSeconds?: number;
  /** Upper bound on cached answers; the least recently used goes first. Default 10 000. */
  maxCacheEntries?: number;
  /** Time allowed for one introspection call. Default 5 000. */
  timeoutMs?: number;
  fetch?: typeof fetch;
  clock?: KitClock;
}

/**
 * The upstream sign-in behind a token (Latchkey federation): only for resource servers the operator allowed
 * (`upstream_claims`), and only when the person signed in through an upstream provider. Never a token.
 */
export interface UpstreamIdentity {
  /** The provider id in Latchkey's configuration ("plane", "github", …). */
  provider: string;
  /** The person's subject at the provider. */
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  username?: string;
  /** Provider-specific claims (Plane: workspace_slug, workspace_id, …; GitHub: login, …). */
  claims: Readonly<Record<string, unknown>>;
}

/** An active token as the authorization server described it (RFC 7662 §2.2), in camelCase. */
export interface ActiveToken {
  active: true;
  scopes: string[];
  clientId: string;
  sub: string;
  username?: string;
  aud: string | string[];
  /** Seconds since the epoch. */
  exp: number;
  iat: number;
  iss: string;
  /** Present when the resource server may see the upstream identity and the person signed in upstream. */
  upstream?: UpstreamIdentity;
}

export type IntrospectionResult = { active: false } | ActiveToken;

/** Anything that can say whether a bearer token is live; the verifier below, or a test double. */
export interface TokenVerifier {
  verify(token: string): Promise<IntrospectionResult>;
}

export interface IntrospectionVerifier extends TokenVerifier {
  /** Forgets every cached answer. */
  clear(): void;
  /** The cache, for inspection: its size and its (hashed) keys. */
  readonly cache: ReadonlyTokenCache;
}

/** The introspection call failed: unreachable, timed out, non-200, or an answer that is not RFC 7662. */
export class IntrospectionError extends Error {
  override readonly name = 'IntrospectionError';
  constructor(
    message: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const systemClock: KitClock = { now: () => new Date() };
const INACTIVE: IntrospectionResult = Object.freeze({ active: false });

export function createIntrospectionVerifier(options: IntrospectionVerifierOptions): IntrospectionVerifier {
  const endpoint = checkEndpoint(options.introspectionEndpoint);
  if (!options.clientId) throw new TypeError('clientId is required');
  if (!options.clientSecret) throw new TypeError('clientSecret is required');
  const authMethod = options.authMethod ?? 'client_secret_basic';
  if (authMethod !== 'client_secret_basic' && authMethod !== 'client_secret_post') {
    throw new TypeError(
      `authMethod must be client_secret_basic or client_secret_post, not ${String(authMethod)}`,
    );
  }
  const ttlMs = nonNegative(options.cacheTtlSeconds ?? 30, 'cacheTtlSeconds') * 1000;
  const maxEntries = nonNegative(options.maxCacheEntries ?? 10_000, 'maxCacheEntries');
  const timeoutMs = options.timeoutMs ?? 5_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new TypeError('timeoutMs must be a positive number');
  const doFetch = options.fetch ?? fetch;
  const clock = options.clock ?? systemClock;
  const cache = new TokenCache<ActiveToken>(maxEntries, clock);
  // Concurrent requests with one token share one call instead of stampeding the authorization server.
  const inflight = new Map<string, Promise<IntrospectionResult>>();

  async function introspect(token: string): Promise<IntrospectionResult> {
    // RFC 7662 §2.1: form-encoded `token`, with the optional `token_type_hint`.
    const { headers, body } = clientFormRequest(authMethod, options, {
      token,
      token_type_hint: 'access_token',
    });
    let response: Response;
    try {
      response = await doFetch(endpoint, {
        method: 'POST',
        headers,
        body,
        redirect: 'error',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      const message = timedOut
        ? `introspection timed out after ${timeoutMs} ms`
        : 'introspection endpoint unreachable';
      throw new IntrospectionError(message, undefined, { cause: err });
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new IntrospectionError(`introspection endpoint answered ${response.status}`, response.status);
    }
    let json: unknown;
    try {
      json = await response.json();
    } catch (err) {
      throw new IntrospectionError('introspection response is not JSON', 200, { cause: err });
    }
    return parseIntrospectionResponse(json);
  }

  async function verify(token: string): Promise<IntrospectionResult> {
    const key = TokenCache.keyOf(token);
    const hit = cache.get(key);
    if (hit) return hit;
    const pending = inflight.get(key);
    if (pending) return pending;
    const call = introspect(token).finally(() => inflight.delete(key));
    inflight.set(key, call);
    const result = await call;
    if (result.active) {
      // Never reuse an answer past the token's own expiry (RFC 7662 §4: caching trades freshness for load).
      const untilExp = result.exp * 1000 - clock.now().getTime();
      cache.set(key, result, Math.min(ttlMs, untilExp));
    }
    return result;
  }

  return { verify, clear: () => cache.clear(), cache };
}

/** Reads an RFC 7662 §2.2 response. Anything that is not a well-formed answer is an IntrospectionError. */
export function parseIntrospectionResponse(json: unknown): IntrospectionResult {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new IntrospectionError('introspection response is not a JSON object', 200);
  }
  const r = json as Record<string, unknown>;
  if (typeof r.active !== 'boolean')
    throw new IntrospectionError('introspection response lacks "active"', 200);
  if (!r.active) return INACTIVE;
  const aud = r.aud;
  const audOk = typeof aud === 'string' || (Array.isArray(aud) && aud.every((a) => typeof a === 'string'));
  if (!audOk) throw malformed('aud');
  if (r.scope !== undefined && typeof r.scope !== 'string') throw malformed('scope');
  if (r.username !== undefined && typeof r.username !== 'string') throw malformed('username');
  const token: ActiveToken = {
    active: true,
    // RFC 7662 §2.2: space-separated, as in RFC 6749 §3.3.
    scopes: typeof r.scope === 'string' ? r.scope.split(' ').filter(Boolean) : [],
    clientId: requireString(r, 'client_id'),
    sub: requireString(r, 'sub'),
    aud: aud as string | string[],
    exp: requireNumber(r, 'exp'),
    iat: requireNumber(r, 'iat'),
    iss: requireString(r, 'iss'),
  };
  if (typeof r.username === 'string') token.username = r.username;
  if (r.upstream !== undefined) token.upstream = parseUpstream(r.upstream);
  // Cached answers are shared between requests; nobody may change one.
  Object.freeze(token.scopes);
  if (Array.isArray(token.aud)) Object.freeze(token.aud);
  return Object.freeze(token);
}

function parseUpstream(value: unknown): UpstreamIdentity {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed('upstream');
  const u = value as Record<string, unknown>;
  const claims = u.claims ?? {};
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims))
    throw malformed('upstream.claims');
  const upstream: UpstreamIdentity = {
    provider: requireString(u, 'provider', 'upstream.provider'),
    sub: requireString(u, 'sub', 'upstream.sub'),
    claims: Object.freeze({ ...(claims as Record<string, unknown>) }),
  };
  for (const name of ['email', 'name', 'username'] as const) {
    const v = u[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') throw malformed(`upstream.${name}`);
    upstream[name] = v;
  }
  if (u.email_verified !== undefined) {
    if (typeof u.email_verified !== 'boolean') throw malformed('upstream.email_verified');
    upstream.email_verified = u.email_verified;
  }
  return Object.freeze(upstream);
}

function requireString(r: Record<string, unknown>, name: string, label = name): string {
  const v = r[name];
  if (typeof v !== 'string' || v === '') throw malformed(label);
  return v;
}

function requireNumber(r: Record<string, unknown>, name: string): number {
  const v = r[name];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw malformed(name);
  return v;
}

function malformed(name: string): IntrospectionError {
  return new IntrospectionError(`introspection response has a missing or malformed "${name}"`, 200);
}

function checkEndpoint(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`introspectionEndpoint must be an absolute URL: ${value}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError(`introspectionEndpoint must be an http(s) URL: ${value}`);
  }
  return url;
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be a non-negative number`);
  return value;
}
