// One error family for the protocol, and one serializer to the wire (RFC 6749 §5.2, RFC 7591 §3.2.2,
// RFC 8707 §2, RFC 6750 §3.1). Anything that is not an OAuthError becomes a generic server_error.
// Errors are made only by the factories below (a test keeps `new OAuthError` out of the rest of src/).

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'access_denied'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'login_required'
  | 'consent_required'
  | 'invalid_redirect_uri'
  | 'invalid_client_metadata'
  | 'invalid_token';

const DEFAULT_STATUS: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  unsupported_response_type: 400,
  invalid_scope: 400,
  invalid_target: 400,
  access_denied: 403,
  server_error: 500,
  temporarily_unavailable: 503,
  login_required: 400,
  consent_required: 400,
  invalid_redirect_uri: 400,
  invalid_client_metadata: 400,
  invalid_token: 401,
};

export interface OAuthErrorBody {
  error: OAuthErrorCode;
  error_description: string;
}

export class OAuthError extends Error {
  readonly status: number;
  /** Extra response headers (WWW-Authenticate for invalid_client and invalid_token, Retry-After…). */
  readonly headers: Record<string, string>;
  constructor(
    readonly code: OAuthErrorCode,
    readonly description: string,
    options: { status?: number; headers?: Record<string, string> } = {},
  ) {
    super(`${code}: ${description}`);
    this.name = 'OAuthError';
    this.status = options.status ?? DEFAULT_STATUS[code];
    this.headers = options.headers ?? {};
  }

  toJSON(): OAuthErrorBody {
    return { error: this.code, error_description: this.description };
  }
}

const factory = (code: OAuthErrorCode) => (description: string) => new OAuthError(code, description);

export const invalidRequest = factory('invalid_request');
export const invalidGrant = factory('invalid_grant');
export const invalidScope = factory('invalid_scope');
export const invalidTarget = factory('invalid_target');
export const unauthorizedClient = factory('unauthorized_client');
export const unsupportedGrantType = factory('unsupported_grant_type');
export const unsupportedResponseType = factory('unsupported_response_type');
export const invalidClientMetadata = factory('invalid_client_metadata');
export const invalidRedirectUri = factory('invalid_redirect_uri');
export const accessDenied = factory('access_denied');
export const serverError = factory('server_error');

/** `login_required` or `consent_required`, the answers to prompt=none (OIDC Core §3.1.2.6). */
export const promptNoneError = (code: 'login_required' | 'consent_required', description: string) =>
  new OAuthError(code, description);

/**
 * 401 invalid_client (RFC 6749 §5.2). `realm` names the protection space of the challenge; a challenge is sent
 * when the caller tried HTTP authentication (or always, for endpoints that accept only it). Without a realm the
 * answer carries no WWW-Authenticate header.
 */
export function invalidClient(description: string, realm?: string): OAuthError {
  return new OAuthError('invalid_client', description, {
    status: 401,
    headers: realm === undefined ? {} : { 'www-authenticate': `Basic realm="${realm}", charset="UTF-8"` },
  });
}

/** RFC 6750 §3.1: a bearer credential that is missing (no error code in the challenge) or not valid. */
export function invalidToken(description: string, missing: boolean): OAuthError {
  return new OAuthError('invalid_token', description, {
    headers: { 'www-authenticate': missing ? 'Bearer' : 'Bearer error="invalid_token"' },
  });
}

/** 503 (or 429 for a rate limit) temporarily_unavailable with Retry-After in seconds (RFC 9110 §10.2.3). */
export function temporarilyUnavailable(
  description: string,
  retryAfterSeconds: number,
  status: 429 | 503 = 503,
): OAuthError {
  return new OAuthError('temporarily_unavailable', description, {
    status,
    headers: { 'retry-after': String(retryAfterSeconds) },
  });
}

/** The answer for a request no route matches; not an OAuth error, so not in the union. */
export const NOT_FOUND_BODY = Object.freeze({ error: 'not_found' });
