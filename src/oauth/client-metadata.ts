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
// - `client_name` is required for CIMD (the rule); for dynamic registration it defaults to the host of
//   the first redirect URI, so the consent page always has something true to show.
// - Error descriptions never echo client-supplied values: RFC 6749 §5.2 limits error_description to a
//   character set those values need not respect.
import type { TokenEndpointAuthMethod } from '../store/clients.ts';
import { OAuthError } from './errors.ts';
import { redirectUriProblem } from './redirect-uri.ts';

export type GrantType = 'authorization_code' | 'refresh_token';
export type ResponseType = 'code';

export const SUPPORTED_GRANT_TYPES: readonly GrantType[] = ['authorization_code', 'refresh_token'];
export const SUPPORTED_RESPONSE_TYPES: readonly ResponseType[] = ['code'];
export const SUPPORTED_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = [
  'none',
  'client_secret_post',
  'client_secret_basic',
];

export const MAX_CLIENT_NAME_LENGTH = 200;
export const MAX_REDIRECT_URIS = 20;
const MAX_URI_LENGTH = 2000;

export interface ClientMetadata {
  name: string;
  redirectUris: string[];
  grantTypes: GrantType[];
  responseTypes: ResponseType[];
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  scope?: string;
  clientUri?: string;
  logoUri?: string;
}

export interface ClientMetadataPolicy {
  /** Where the metadata comes from: a registration request, or a fetched CIMD document. */
  source: 'registration' | 'cimd';
  /** The server's supported scopes (config.scopes). */
  supportedScopes: readonly string[];
  /** Operator allow-list (ALLOWED_REDIRECT_URI_PATTERNS): every redirect URI must match one pattern. */
  allowedRedirectUriPatterns?: readonly RegExp[] | undefined;
}

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // RFC 6749 §3.3 scope-token
// Control characters and bidirectional overrides would let a name disguise itself on the consent page.
const UNSAFE_NAME_CHARS = /[\p{Cc}\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;

const invalidMetadata = (d: string) => new OAuthError('invalid_client_metadata', d);
const invalidRedirectUri = (d: string) => new OAuthError('invalid_redirect_uri', d);

/** Validates RFC 7591 client metadata; throws invalid_redirect_uri or invalid_client_metadata. */
export function validateClientMetadata(input: unknown, policy: ClientMetadataPolicy): ClientMetadata {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidMetadata('client metadata must be a JSON object');
  }
  // Some client libraries serialize absent optional fields as null; read null as omitted.
  const field = (key: string): unknown => (input as Record<string, unknown>)[key] ?? undefined;
  const redirectUris = checkRedirectUris(field('redirect_uris'), policy);
  const grantTypes = checkGrantTypes(field('grant_types'));
  const responseTypes = checkResponseTypes(field('response_types'), grantTypes);
  const tokenEndpointAuthMethod = checkAuthMethod(field('token_endpoint_auth_method'));
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

/** RFC 7591 §2 redirect_uris: required for the authorization code grant; each one per redirect-uri.ts. */
function checkRedirectUris(value: unknown, policy: ClientMetadataPolicy): string[] {
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

/** RFC 7591 §2 grant_types: default authorization_code; we issue nothing but codes and refresh tokens. */
function checkGrantTypes(value: unknown): GrantType[] {
  if (value === undefined) return ['authorization_code'];
  const list = stringArray(value, 'grant_types');
  if (!list.every((g): g is GrantType => (SUPPORTED_GRANT_TYPES as string[]).includes(g))) {
    throw invalidMetadata('grant_types may only contain authorization_code and refresh_token');
  }
  if (!list.includes('authorization_code')) {
    throw invalidMetadata('grant_types must include authorization_code');
  }
  return [...new Set(list)];
}

/** RFC 7591 §2 response_types (default code), consistent with grant_types per RFC 7591 §2.1. */
function checkResponseTypes(value: unknown, grantTypes: readonly GrantType[]): ResponseType[] {
  if (value === undefined) return ['code'];
  const list = stringArray(value, 'response_types');
  if (!list.every((r): r is ResponseType => (SUPPORTED_RESPONSE_TYPES as string[]).includes(r))) {
    throw invalidMetadata('response_types may only contain code');
  }
  // RFC 7591 §2.1: the authorization_code grant type goes with the code response type, both ways.
  if (grantTypes.includes('authorization_code') !== list.includes('code')) {
    throw invalidMetadata(
      'grant_types and response_types are inconsistent: authorization_code requires code',
    );
  }
  return [...new Set(list)];
}

/** RFC 7591 §2 token_endpoint_auth_method: default none here (DESIGN: omitted → public client). */
function checkAuthMethod(value: unknown): TokenEndpointAuthMethod {
  if (value === undefined) return 'none';
  if (typeof value !== 'string' || !(SUPPORTED_AUTH_METHODS as string[]).includes(value)) {
    throw invalidMetadata(
      'token_endpoint_auth_method must be one of none, client_secret_post, client_secret_basic',
    );
  }
  return value as TokenEndpointAuthMethod;
}

function checkClientName(value: unknown, source: ClientMetadataPolicy['source'], redirectUris: string[]) {
  if (value === undefined || (typeof value === 'string' && value.trim() === '')) {
    if (source === 'cimd') throw invalidMetadata('client_name is required');
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
