// The upstream access token of the person behind a request, for resource servers the operator allowed
// (`upstream_token`): an RFC 8693 token exchange at Latchkey's /token, authenticated with the resource server's
// introspection credentials. The subject token is the Latchkey access token the MCP client presented. Latchkey
// refreshes the upstream token when needed; nothing is cached here (a token is asked for when a tool needs it).
import { type ClientAuthMethod, clientFormRequest } from './client-request.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface UpstreamTokenClientOptions {
  /** Latchkey's token endpoint, e.g. `https://auth.example.com/token`. */
  tokenEndpoint: string;
  /** This resource server's credentials (the same as for /introspect). */
  clientId: string;
  clientSecret: string;
  /** Default `client_secret_basic`. */
  authMethod?: ClientAuthMethod;
  /** Time allowed for one call. Default 15 000 (Latchkey may refresh upstream first). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface UpstreamToken {
  accessToken: string;
  /** When the upstream says it expires; absent when unknown (GitHub OAuth-app tokens never expire). */
  expiresAt?: Date;
  scopes: string[];
}

export interface UpstreamTokenClient {
  /** `bearer`: the Latchkey access token of the request; `audience`: the provider id when there could be several. */
  get(bearer: string, options?: { audience?: string }): Promise<UpstreamToken>;
}

/**
 * Latchkey refused or could not answer. `error` is the OAuth error code: `invalid_grant` means the person must sign
 * in again (the MCP client re-authorizes), `temporarily_unavailable` (503, `retryAfter` seconds) means try later.
 */
export class UpstreamTokenError extends Error {
  override readonly name = 'UpstreamTokenError';
  constructor(
    message: string,
    readonly error: string,
    readonly status?: number,
    readonly retryAfter?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function createUpstreamTokenClient(options: UpstreamTokenClientOptions): UpstreamTokenClient {
  if (!URL.canParse(options.tokenEndpoint) || !/^https?:$/.test(new URL(options.tokenEndpoint).protocol)) {
    throw new TypeError(`tokenEndpoint must be an absolute http(s) URL: ${options.tokenEndpoint}`);
  }
  if (!options.clientId) throw new TypeError('clientId is required');
  if (!options.clientSecret) throw new TypeError('clientSecret is required');
  const authMethod = options.authMethod ?? 'client_secret_basic';
  const timeoutMs = options.timeoutMs ?? 15_000;
  const doFetch = options.fetch ?? fetch;

  async function get(bearer: string, opts: { audience?: string } = {}): Promise<UpstreamToken> {
    const fields: Record<string, string> = {
      grant_type: TOKEN_EXCHANGE_GRANT,
      subject_token: bearer,
      subject_token_type: ACCESS_TOKEN_TYPE,
      requested_token_type: ACCESS_TOKEN_TYPE,
    };
    if (opts.audience !== undefined) fields.audience = opts.audience;
    const { headers, body } = clientFormRequest(authMethod, options, fields);
    let response: Response;
    try {
      response = await doFetch(options.tokenEndpoint, {
        method: 'POST',
        headers,
        body,
        redirect: 'error',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new UpstreamTokenError(
        'token endpoint unreachable',
        'temporarily_unavailable',
        undefined,
        undefined,
        {
          cause: err,
        },
      );
    }
    let json: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = await response.json();
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        json = parsed as Record<string, unknown>;
      }
    } catch {
      json = undefined;
    }
    if (response.status !== 200) {
      const error = typeof json?.error === 'string' ? json.error : 'server_error';
      const description = typeof json?.error_description === 'string' ? `: ${json.error_description}` : '';
      const retry = Number(response.headers.get('retry-after'));
      throw new UpstreamTokenError(
        `token exchange refused (${response.status} ${error})${description}`,
        error,
        response.status,
        Number.isFinite(retry) && retry > 0 ? retry : undefined,
      );
    }
    if (!json || typeof json.access_token !== 'string' || json.access_token === '') {
      throw new UpstreamTokenError('token exchange answer has no access_token', 'server_error', 200);
    }
    const token: UpstreamToken = {
      accessToken: json.access_token,
      scopes: typeof json.scope === 'string' ? json.scope.split(' ').filter(Boolean) : [],
    };
    if (typeof json.expires_in === 'number' && Number.isFinite(json.expires_in)) {
      token.expiresAt = new Date(Date.now() + json.expires_in * 1000);
    }
    return token;
  }

  return { get };
}
