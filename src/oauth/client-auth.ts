// Client authentication at the token and revocation endpoints (RFC 6749 §2.3, §3.2.1; OAuth 2.1 §2.4):
// `none` (public: client_id only), `client_secret_post`, `client_secret_basic`, as the client registered.
// Any failure is 401 invalid_client, with a Basic challenge when the client tried Basic (RFC 6749 §5.2).
import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import type { Client } from '../generated/prisma/client.ts';
import { verifySecret } from '../lib/crypto.ts';
import { hasControlCharacter } from '../lib/text.ts';
import { invalidClient, invalidRequest, OAuthError } from './errors.ts';
import type { Params } from './params.ts';

/** The client authentication methods Latchkey supports (RFC 8414 token_endpoint_auth_methods_supported). */
export const CLIENT_AUTH_METHODS = ['none', 'client_secret_post', 'client_secret_basic'] as const;
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];
/** The methods that present a secret (RFC 7591 §2: the client needs a client_secret). */
export const SECRET_AUTH_METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post'];

export function isClientAuthMethod(value: unknown): value is ClientAuthMethod {
  return typeof value === 'string' && (CLIENT_AUTH_METHODS as readonly string[]).includes(value);
}

export interface BasicCredentials {
  id: string;
  secret: string;
}

/**
 * Base64 to text. atob is several times faster than a Buffer (every /introspect call and many /token calls come with
 * a Basic header), and gives the same text when every byte is ASCII, as ids and secrets almost always are; anything
 * else (non-ASCII, or what atob refuses) is decoded as UTF-8 by Buffer, as leniently as before.
 */
function decodeBase64(value: string): string {
  try {
    const bytes = atob(value);
    if (isAscii(bytes)) return bytes;
  } catch {
    // not strict base64: Buffer's decoding below skips what it cannot read
  }
  return Buffer.from(value, 'base64').toString('utf8');
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Parses `Authorization: Basic`; ids and secrets are form-urlencoded inside it (RFC 6749 §2.3.1). */
export function parseBasicAuth(header: string | undefined): BasicCredentials | undefined | 'malformed' {
  if (!header) return undefined;
  // The scheme, then the value up to the next space (as `split(' ', 2)` would cut it, without the array).
  const space = header.indexOf(' ');
  if ((space < 0 ? header : header.slice(0, space)).toLowerCase() !== 'basic') return undefined;
  if (space < 0) return 'malformed';
  const end = header.indexOf(' ', space + 1);
  const value = header.slice(space + 1, end < 0 ? undefined : end);
  if (!value) return 'malformed';
  const decoded = decodeBase64(value);
  const i = decoded.indexOf(':');
  if (i < 0) return 'malformed';
  // No control character belongs in an id or a secret (and PostgreSQL cannot even look up a NUL).
  if (hasControlCharacter(decoded)) return 'malformed';
  // Most ids and secrets need no form-decoding: then they are the two sides of the colon as they are.
  if (!decoded.includes('%') && !decoded.includes('+'))
    return { id: decoded.slice(0, i), secret: decoded.slice(i + 1) };
  try {
    const formDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    const id = formDecode(decoded.slice(0, i));
    const secret = formDecode(decoded.slice(i + 1));
    // Nor may one come out of the form-decoding (%00 and the like).
    if (hasControlCharacter(id) || hasControlCharacter(secret)) return 'malformed';
    return { id, secret };
  } catch {
    return 'malformed';
  }
}

const REALM = 'latchkey';

export interface PresentedCredentials {
  id: string | undefined;
  secret: string | undefined;
  /** How they were presented: `client_secret_basic`, `client_secret_post`, or `none` (no secret). */
  method: ClientAuthMethod;
}

/**
 * The credentials a caller presents, by Basic header or in the form body but not both (RFC 6749 §2.3.1).
 * `malformed` builds the error for an unreadable Basic header.
 */
export function presentedCredentials(
  req: FastifyRequest,
  params: Params,
  realm: string,
): PresentedCredentials {
  const basic = parseBasicAuth(req.headers.authorization);
  if (basic === 'malformed') throw invalidClient('malformed Basic authorization header', realm);
  const bodyId = params.get('client_id');
  const bodySecret = params.get('client_secret');
  if (basic && bodySecret !== undefined) {
    throw invalidRequest('use only one client authentication method');
  }
  if (basic && bodyId !== undefined && bodyId !== basic.id) {
    throw invalidRequest('client_id does not match the authorization header');
  }
  if (basic) return { id: basic.id, secret: basic.secret, method: 'client_secret_basic' };
  return { id: bodyId, secret: bodySecret, method: bodySecret !== undefined ? 'client_secret_post' : 'none' };
}

export async function authenticateClient(
  ctx: AppContext,
  req: FastifyRequest,
  params: Params,
): Promise<Client> {
  const presented = presentedCredentials(req, params, REALM);
  // RFC 6749 §5.2: a client that tried HTTP authentication is answered with a challenge.
  const realm = presented.method === 'client_secret_basic' ? REALM : undefined;
  const clientId = presented.id;
  if (!clientId) throw invalidClient('client authentication is required');

  let client: Client;
  try {
    client = await ctx.clients.resolve(clientId, req.log);
  } catch (err) {
    if (err instanceof OAuthError) throw invalidClient(err.description, realm);
    throw err;
  }

  if (presented.method !== client.tokenEndpointAuthMethod) {
    throw invalidClient(`this client must authenticate with ${client.tokenEndpointAuthMethod}`, realm);
  }
  if (presented.method !== 'none') {
    if (!client.secretHash || !verifySecret(presented.secret ?? '', client.secretHash)) {
      throw invalidClient('client authentication failed', realm);
    }
  }
  return client;
}
