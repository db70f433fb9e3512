// The request check every adapter shares: read the bearer token (RFC 6750 §2.1), ask the verifier, bind the
// audience (RFC 8707 §2, MCP authorization "Token Audience Binding"), check scopes, and otherwise answer with a
// challenge (RFC 6750 §3) whose `resource_metadata` points at the protected resource metadata (RFC 9728 §5.1).
import type { ActiveToken, IntrospectionResult, TokenVerifier } from './introspection.ts';
import { protectedResourceMetadataUrl } from './metadata.ts';
import { audienceIncludes, requireResource } from './resource.ts';

export interface ProtectResourceOptions {
  /** The canonical URL of the protected MCP endpoint, e.g. `https://mcp.example.com/mcp`: the token audience. */
  resource: string;
  /** Absolute URL of this resource's metadata. Default: the path-suffixed well-known URL (RFC 9728 §3.1). */
  resourceMetadataUrl?: string;
  /** Scopes every request needs; all must be granted (RFC 6750 §3.1 insufficient_scope). */
  requiredScopes?: string[];
  verifier: TokenVerifier;
  /** Told about verification failures that become 503 (for logs; the error never carries the token). */
  onError?: (error: unknown) => void;
}

/** The caller, once the token checks out. */
export interface LatchkeyAuth extends Omit<ActiveToken, 'active'> {
  token: string;
  /** The resource this request was checked against (the configured canonical URL). */
  resource: string;
}

export interface ChallengeBody {
  error?: 'invalid_token' | 'insufficient_scope' | 'temporarily_unavailable';
  error_description: string;
}

/** A response to send instead of serving the request. Header names are lower-case. */
export interface Challenge {
  status: 401 | 403 | 503;
  headers: Record<string, string>;
  body: ChallengeBody;
}

export type AuthenticationResult = { ok: true; auth: LatchkeyAuth } | { ok: false; challenge: Challenge };

export interface ResourceProtection {
  readonly resource: string;
  readonly resourceMetadataUrl: string;
  readonly requiredScopes: readonly string[];
  /** Checks the value of a request's Authorization header. Never throws for a bad request or a failed verifier. */
  authenticate(authorizationHeader: string | undefined): Promise<AuthenticationResult>;
}

// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 §11.1).
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
const SCHEME = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?: |$)/;
const MAX_TOKEN_LENGTH = 4096;

export function protectResource(options: ProtectResourceOptions): ResourceProtection {
  const resource = requireResource(options.resource, 'resource');
  const resourceMetadataUrl = options.resourceMetadataUrl ?? protectedResourceMetadataUrl(resource);
  if (!URL.canParse(resourceMetadataUrl)) {
    // RFC 9728 §5.1 and MCP clients (Claude) need an absolute URL here.
    throw new TypeError(`resourceMetadataUrl must be an absolute URL: ${resourceMetadataUrl}`);
  }
  const requiredScopes = Object.freeze([...(options.requiredScopes ?? [])]);
  const { verifier, onError } = options;

  function challenge(status: 401 | 403, body: ChallengeBody): Challenge {
    const params: [string, string][] = [['resource_metadata', resourceMetadataUrl]];
    if (requiredScopes.length > 0) params.push(['scope', requiredScopes.join(' ')]);
    if (body.error) params.push(['error', body.error], ['error_description', body.error_description]);
    const value = `Bearer ${params.map(([k, v]) => `${k}="${quote(v)}"`).join(', ')}`;
    return { status, headers: { 'www-authenticate': value, 'cache-control': 'no-store' }, body };
  }

  async function authenticate(header: string | undefined): Promise<AuthenticationResult> {
    const value = header?.trim() ?? '';
    const scheme = SCHEME.exec(value)?.[1];
    if (scheme?.toLowerCase() !== 'bearer') {
      // RFC 6750 §3.1: a request without (bearer) credentials gets a challenge with no error code.
      return refuse(challenge(401, { error_description: 'a bearer token is required' }));
    }
    const token = BEARER.exec(value)?.[1];
    if (!token || token.length > MAX_TOKEN_LENGTH) {
      // Strictly invalid_request/400, but MCP clients only start authorization on 401 (RFC 6750 §3.1).
      return refuse(challenge(401, { error: 'invalid_token', error_description: 'malformed bearer token' }));
    }
    let result: IntrospectionResult;
    try {
      result = await verifier.verify(token);
    } catch (err) {
      reportError(onError, err);
      return refuse({
        status: 503,
        headers: { 'cache-control': 'no-store', 'retry-after': '5' },
        body: { error: 'temporarily_unavailable', error_description: 'token verification is unavailable' },
      });
    }
    if (!result.active) {
      return refuse(challenge(401, { error: 'invalid_token', error_description: 'token is not active' }));
    }
    if (!audienceIncludes(result.aud, resource)) {
      // MCP authorization: a server MUST reject tokens not issued for it, never pass them on.
      return refuse(
        challenge(401, { error: 'invalid_token', error_description: 'token is not for this resource' }),
      );
    }
    const missing = requiredScopes.filter((s) => !result.scopes.includes(s));
    if (missing.length > 0) {
      return refuse(
        challenge(403, { error: 'insufficient_scope', error_description: 'token lacks a required scope' }),
      );
    }
    const auth: LatchkeyAuth = {
      token,
      clientId: result.clientId,
      scopes: [...result.scopes],
      sub: result.sub,
      aud: Array.isArray(result.aud) ? [...result.aud] : result.aud,
      exp: result.exp,
      iat: result.iat,
      iss: result.iss,
      resource,
    };
    if (result.username !== undefined) auth.username = result.username;
    if (result.upstream !== undefined) auth.upstream = result.upstream;
    return { ok: true, auth };
  }

  return { resource, resourceMetadataUrl, requiredScopes, authenticate };
}

// A throwing log hook must not turn a 503 into an unhandled rejection.
function reportError(onError: ((error: unknown) => void) | undefined, err: unknown): void {
  try {
    onError?.(err);
  } catch {
    // ignored: the challenge is still sent
  }
}

function refuse(challenge: Challenge): AuthenticationResult {
  return { ok: false, challenge };
}

// RFC 9110 §5.6.4 quoted-string: escape backslash and double quote.
function quote(value: string): string {
  return value.replace(/[\\"]/g, '\\$&');
}
