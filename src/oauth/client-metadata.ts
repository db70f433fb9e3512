// Client metadata validation, shared by dynamic registration (RFC 7591 §2) and Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document §4.1, which reuses the RFC 7591 fields). The result is the
// normalized client the store keeps; a problem is an OAuthError whose description says which field is wrong.
//
// Decisions where the RFC leaves room:
// - Unknown fields are ignored (RFC 7591 §2: "The authorization server MUST ignore any client metadata sent by
//   the client that it does not understand").
// - `scope`: malformed scope tokens are rejected; well-formed but unsupported scopes are dropped, and the kept
//   list is echoed in the registration response (RFC 7591 §3.2.1 lets the server replace requested values).
//   MCP clients copy scopes from resource metadata that may name other servers' scopes, and refusing those
//   would leave them unable to connect. When no supported scope remains, `scope` is omitted.
// - `client_name` is required for CIMD and for clients without redirect URIs; for dynamic registration it
//   defaults to the host of the first redirect URI, so the consent page always has something true to show.
// - `grant_types` come from the grant registry (src/oauth/grants/): what /token implements is what may be
//   registered. Grants that give a client tokens with no person's approval (client_credentials) are only for
//   clients an operator creates, and only with a secret.
// - Error descriptions never echo client-supplied values: RFC 6749 §5.2 limits error_description to a
//   character set those values need not respect.
import { CLIENT_AUTH_METHODS, type ClientAuthMethod, isClientAuthMethod } from './client-auth.ts';
import { invalidClientMetadata as invalidMetadata, invalidRedirectUri } from './errors.ts';
import { AUTHORIZATION_CODE, findGrantType, GRANT_TYPES } from './grants/index.ts';
import { redirectUriProblem } from './redirect-uri.ts';

export type ResponseType = 'code';

export const SUPPORTED_RESPONSE_TYPES: readonly ResponseType[] = ['code'];

export const MAX_CLIENT_NAME_LENGTH = 200;
export const MAX_REDIRECT_URIS = 20;
const MAX_URI_LENGTH = 2000;

export interface ClientMetadata {
  name: string;
  redirectUris: string[];
  grantTypes: string[];
  responseTypes: ResponseType[];
  tokenEndpointAuthMethod: ClientAuthMethod;
  scope?: string;
  clientUri?: string;
  logoUri?: string;
}

export interface ClientMetadataPolicy {
  /** Where the metadata comes from: a registration request, a fetched CIMD document, or the operator's CLI. */
  source: 'registration' | 'cimd' | 'operator';
  /** The server's supported scopes (config.scopes). */
  supportedScopes: readonly string[];
  /** Operator allow-list (ALLOWED_REDIRECT_URI_PATTERNS): every redirect URI must match one pattern. */
  allowedRedirectUriPatterns?: readonly RegExp[] | undefined;
}

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // RFC 6749 §3.3 scope-token
// Control characters and bidirectional overrides would let a name disguise itself on the consent page.
const UNSAFE_NAME_CHARS = /[\p{Cc}\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;

/** Validates RFC 7591 client metadata; throws invalid_redirect_uri or invalid_client_metadata. */
export function validateClientMetadata(input: unknown, policy: ClientMetadataPolicy): ClientMetadata {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidMetadata('client metadata must be a JSON object');
  }
  // Some client libraries serialize absent optional fields as null; read null as omitted.
  const field = (key: string): unknown => (input as Record<string, unknown>)[key] ?? undefined;
  const grantTypes = checkGrantTypes(field('grant_types'), policy.source);
  const redirects = grantTypes.some((g) => findGrantType(g)?.redirects);
  const redirectUris = checkRedirectUris(field('redirect_uris'), policy, redirects);
  const responseTypes = checkResponseTypes(field('response_types'), grantTypes);
  const tokenEndpointAuthMethod = checkAuthMethod(field('token_endpoint_auth_method'), grantTypes);
  const name = checkClientName(field('client_name'), policy.source, redirectUris);
  const scope = checkScope(field('scope'), policy.supportedScopes);
  const clientUri = checkHttpsUri(field('client_uri'), 'client_uri');
  const logoUri = checkHttpsUri(field('logo_uri'), 'logo_uri');
  return {
    name,
    redirectUris,
    grantTypes,
    responseTypes,
    tokenEndpointAuthMethod,
    ...(scope !== undefined && { scope }),
    ...(clientUri !== undefined && { clientUri }),
    ...(logoUri !== undefined && { logoUri }),
  };
}

/** RFC 7591 §2 redirect_uris: required for grants that redirect; each one per redirect-uri.ts. */
function checkRedirectUris(value: unknown, policy: ClientMetadataPolicy, required: boolean): string[] {
  if (value === undefined && !required) return [];
  if (value === undefined) throw invalidRedirectUri('redirect_uris is required');
  if (!Array.isArray(value) || value.length === 0) {
    throw invalidRedirectUri('redirect_uris must be a non-empty array of strings');
  }
  if (value.length > MAX_REDIRECT_URIS) {
    throw invalidRedirectUri(`redirect_uris may list at most ${MAX_REDIRECT_URIS} URIs`);
  }
  value.forEach((uri: unknown, i) => {
    if (typeof uri !== 'string') throw invalidRedirectUri(`redirect_uris[${i}] must be a string`);
    const problem = redirectUriProblem(uri);
    if (problem) throw invalidRedirectUri(`redirect_uris[${i}]: ${problem}`);
    const patterns = policy.allowedRedirectUriPatterns;
    if (patterns && !patterns.some((p) => p.test(uri))) {
      throw invalidRedirectUri(`redirect_uris[${i}] is not allowed by this server's redirect URI policy`);
    }
  });
  return [...new Set(value as string[])];
}

/** RFC 7591 §2 grant_types: default authorization_code; each one a grant /token implements for this source. */
function checkGrantTypes(value: unknown, source: ClientMetadataPolicy['source']): string[] {
  if (value === undefined) return [AUTHORIZATION_CODE];
  const list = stringArray(value, 'grant_types');
  const offered = GRANT_TYPES.filter((g) => source === 'operator' || g.selfRegistered);
  const grants = list.map((type) => offered.find((g) => g.type === type));
  if (grants.some((g) => g === undefined)) {
    throw invalidMetadata(`grant_types may only contain ${offered.map((g) => g.type).join(', ')}`);
  }
  if (!grants.some((g) => g?.initial)) {
    const initial = offered.filter((g) => g.initial).map((g) => g.type);
    throw invalidMetadata(`grant_types must include ${initial.join(' or ')}`);
  }
  return [...new Set(list)];
}

/** RFC 7591 §2 response_types (default code), consistent with grant_types per RFC 7591 §2.1. */
function checkResponseTypes(value: unknown, grantTypes: readonly string[]): ResponseType[] {
  if (value === undefined) return grantTypes.includes(AUTHORIZATION_CODE) ? ['code'] : [];
  const list = stringArray(value, 'response_types');
  if (!list.every((r): r is ResponseType => (SUPPORTED_RESPONSE_TYPES as string[]).includes(r))) {
    throw invalidMetadata('response_types may only contain code');
  }
  // RFC 7591 §2.1: the authorization_code grant type goes with the code response type, both ways.
  if (grantTypes.includes(AUTHORIZATION_CODE) !== list.includes('code')) {
    throw invalidMetadata(
      'grant_types and response_types are inconsistent: authorization_code requires code',
    );
  }
  return [...new Set(list)];
}

/** RFC 7591 §2 token_endpoint_auth_method; omitted → none, a public client (MCP clients that want a secret ask). */
function checkAuthMethod(value: unknown, grantTypes: readonly string[]): ClientAuthMethod {
  if (value !== undefined && !isClientAuthMethod(value)) {
    throw invalidMetadata(`token_endpoint_auth_method must be one of ${CLIENT_AUTH_METHODS.join(', ')}`);
  }
  const method = value ?? 'none';
  const needsSecret = GRANT_TYPES.find((g) => g.confidentialOnly && grantTypes.includes(g.type));
  if (needsSecret && method === 'none') {
    throw invalidMetadata(
      `grant_type ${needsSecret.type} needs a client secret (client_secret_basic or client_secret_post)`,
    );
  }
  return method;
}

function checkClientName(value: unknown, source: ClientMetadataPolicy['source'], redirectUris: string[]) {
  if (value === undefined || (typeof value === 'string' && value.trim() === '')) {
    if (source !== 'registration' || redirectUris.length === 0)
      throw invalidMetadata('client_name is required');
    // redirectUris are validated absolute URIs by now.
    return new URL(redirectUris[0]!).hostname;
  }
  if (typeof value !== 'string') throw invalidMetadata('client_name must be a string');
  const name = value.trim();
  if (name.length > MAX_CLIENT_NAME_LENGTH) {
    throw invalidMetadata(`client_name must be at most ${MAX_CLIENT_NAME_LENGTH} characters`);
  }
  if (UNSAFE_NAME_CHARS.test(name)) {
    throw invalidMetadata('client_name must not contain control or bidirectional formatting characters');
  }
  return name;
}

function checkScope(value: unknown, supported: readonly string[]): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalidMetadata('scope must be a space-separated string');
  const tokens = value.split(' ').filter((t) => t !== '');
  if (!tokens.every((t) => SCOPE_TOKEN.test(t))) {
    throw invalidMetadata('scope must be a space-separated list of scope tokens (RFC 6749 section 3.3)');
  }
  const kept = [...new Set(tokens)].filter((t) => supported.includes(t));
  return kept.length > 0 ? kept.join(' ') : undefined;
}

/** client_uri and logo_uri are shown to the user, so only absolute https URLs without credentials. */
function checkHttpsUri(value: unknown, field: 'client_uri' | 'logo_uri'): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > MAX_URI_LENGTH) {
    throw invalidMetadata(`${field} must be an https URL`);
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidMetadata(`${field} must be an https URL`);
  }
  if (url.protocol !== 'https:' || url.username || url.password) {
    throw invalidMetadata(`${field} must be an https URL without credentials`);
  }
  return value;
}

function stringArray(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw invalidMetadata(`${field} must be an array of strings`);
  }
  return value;
}
