// Validation of an authorization request (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1, RFC 7636, RFC 8707, RFC 9207),
// as a pipeline of named checks. Until the client and its redirect URI are known good, a problem is shown on
// Latchkey's own error page and never redirected (RFC 6749 §4.1.2.1); after that, it goes back to the client.

import type { FastifyBaseLogger } from 'fastify';
import type { AppContext } from '../context.ts';
import type { Client, ResourceServer } from '../generated/prisma/client.ts';
import { hasControlCharacter, shorten } from '../lib/text.ts';
import { invalidRequest, OAuthError, unauthorizedClient, unsupportedResponseType } from './errors.ts';
import { AUTHORIZATION_CODE } from './grants/index.ts';
import type { Params } from './params.ts';
import { isValidS256Challenge } from './pkce.ts';
import { matchRedirectUri } from './redirect-uri.ts';
import { resolveResource } from './resources.ts';
import { resolveRequestedScopes } from './scopes.ts';

/** Parameters carried from the consent page back to POST /authorize. */
export const AUTHORIZATION_PARAMS = [
  'client_id',
  'redirect_uri',
  'response_type',
  'code_challenge',
  'code_challenge_method',
  'state',
  'scope',
  'resource',
  'prompt',
] as const;

const PROMPTS = new Set(['none', 'login', 'consent', 'select_account']);

/**
 * The longest state, once URL-encoded, that Latchkey sends back. Every response to the client carries it in a
 * Location header, so it must fit the header limits of the client's own server (Node's 16 KiB for all headers,
 * nginx's 8 KiB request line) next to the redirect URI (≤ 2,000 characters when registered by the client) and the
 * code. The form schema bounds a parameter to 4,096 characters, but not characters that encode to 6 or 12 bytes.
 */
export const MAX_STATE_BYTES = 4096;

/** The length of `value` as authorizationResponseUrl writes it (form-encoded, lone surrogates as U+FFFD). */
function formEncodedLength(value: string): number {
  return new URLSearchParams({ v: value }).toString().length - 'v='.length;
}

export interface AuthorizationRequest {
  client: Client;
  redirectUri: string;
  state: string | undefined;
  codeChallenge: string;
  scopes: string[];
  resource: ResourceServer;
  /** The resource parameter as sent (null when omitted and the single resource server was chosen). */
  requestedResource: string | null;
  prompt: Set<string>;
  /** The request's own parameters, to carry through the consent form. */
  params: { name: string; value: string }[];
}

/** An authorization error: rendered as a page when `redirectUri` is undefined, else sent back to the client. */
export class AuthorizationError extends Error {
  constructor(
    readonly error: OAuthError,
    readonly redirectUri?: string,
    readonly state?: string,
    /** The client, once known: its trace records the error (README: Client traces). */
    readonly clientId?: string,
  ) {
    super(error.message);
    this.name = 'AuthorizationError';
  }
}

/** An error about a request whose client and redirect URI are known good: it goes back to the client. */
export function requestError(ar: AuthorizationRequest, error: OAuthError): AuthorizationError {
  return new AuthorizationError(error, ar.redirectUri, ar.state, ar.client.clientId);
}

async function checkClient(ctx: AppContext, params: Params, log?: FastifyBaseLogger): Promise<Client> {
  const clientId = params.get('client_id');
  if (!clientId) throw new AuthorizationError(invalidRequest('client_id is required'));
  try {
    return await ctx.clients.resolve(clientId, log);
  } catch (err) {
    if (err instanceof OAuthError) throw new AuthorizationError(invalidRequest(err.description));
    throw err;
  }
}

function checkRedirectUri(client: Client, params: Params): string {
  const requested = params.get('redirect_uri');
  if (requested === undefined) {
    // RFC 6749 §3.1.2.3: may be omitted only when exactly one is registered.
    if (client.redirectUris.length === 1) return client.redirectUris[0]!;
    throw new AuthorizationError(
      invalidRequest('redirect_uri is required'),
      undefined,
      undefined,
      client.clientId,
    );
  }
  if (!matchRedirectUri(requested, client.redirectUris)) {
    throw new AuthorizationError(
      invalidRequest('redirect_uri is not registered for this client'),
      undefined,
      undefined,
      client.clientId,
    );
  }
  return requested;
}

function checkResponseType(params: Params): void {
  const rt = params.get('response_type');
  if (rt === undefined) throw invalidRequest('response_type is required');
  if (rt !== 'code') throw unsupportedResponseType('only response_type=code is supported');
}

function checkPkce(params: Params): string {
  const challenge = params.get('code_challenge');
  const method = params.get('code_challenge_method');
  if (challenge === undefined) throw invalidRequest('code_challenge is required (PKCE)');
  if (method !== 'S256') {
    throw invalidRequest('code_challenge_method must be S256');
  }
  if (!isValidS256Challenge(challenge)) throw invalidRequest('code_challenge is malformed');
  return challenge;
}

function checkPrompt(params: Params): Set<string> {
  const prompt = new Set((params.get('prompt') ?? '').split(' ').filter(Boolean));
  for (const p of prompt) {
    if (!PROMPTS.has(p)) throw invalidRequest(`unsupported prompt value: ${shorten(p)}`);
  }
  if (prompt.has('none') && prompt.size > 1) {
    throw invalidRequest('prompt=none cannot be combined with other values');
  }
  return prompt;
}

/** None of the request's own parameters may hold a control character (the route's schema only bounds them). */
function checkText(params: Params): void {
  for (const name of AUTHORIZATION_PARAMS) {
    if (params.all(name).some(hasControlCharacter)) {
      throw invalidRequest(`${name} must not contain control characters`);
    }
  }
}

export async function validateAuthorizationRequest(
  ctx: AppContext,
  params: Params,
  log?: FastifyBaseLogger,
): Promise<AuthorizationRequest> {
  // The client and redirect URI are checked first; repeated values of them mean neither can be trusted.
  for (const name of ['client_id', 'redirect_uri']) {
    if (params.all(name).length > 1) {
      throw new AuthorizationError(invalidRequest(`${name} must not be repeated`));
    }
  }
  const client = await checkClient(ctx, params, log);
  const redirectUri = checkRedirectUri(client, params);
  const rawState = params.toRecord().state;
  const state = typeof rawState === 'string' && rawState !== '' ? rawState : undefined;
  if (state !== undefined && formEncodedLength(state) > MAX_STATE_BYTES) {
    // Sending it back would make a response the client cannot read, and sending the error without it would drop
    // what the client checks the response against: the page says so instead.
    throw new AuthorizationError(
      invalidRequest(`state is too long: at most ${MAX_STATE_BYTES} bytes once URL-encoded`),
      undefined,
      undefined,
      client.clientId,
    );
  }

  try {
    // RFC 8707 allows several resource parameters; resolveResource refuses more than one as invalid_target.
    const duplicate = params.firstDuplicate(['resource']);
    if (duplicate) throw invalidRequest(`${duplicate} must not be repeated`);
    checkText(params);
    const codeFlow = client.grantTypes.includes(AUTHORIZATION_CODE);
    if (!codeFlow || (!client.responseTypes.includes('code') && client.responseTypes.length > 0)) {
      throw unauthorizedClient('this client may not use the authorization code flow');
    }
    checkResponseType(params);
    const codeChallenge = checkPkce(params);
    const scopes = resolveRequestedScopes(params.get('scope'), ctx.config.scopes);
    const requestedResources = params.all('resource');
    const resource = await resolveResource(requestedResources, ctx.stores.resourceServers);
    const prompt = checkPrompt(params);
    const paramsOut: { name: string; value: string }[] = [];
    for (const name of AUTHORIZATION_PARAMS) {
      const v = params.get(name);
      if (v !== undefined) paramsOut.push({ name, value: v });
    }
    return {
      client,
      redirectUri,
      state,
      codeChallenge,
      scopes,
      resource,
      requestedResource: requestedResources[0] ?? null,
      prompt,
      params: paramsOut,
    };
  } catch (err) {
    if (err instanceof OAuthError) throw new AuthorizationError(err, redirectUri, state, client.clientId);
    throw err;
  }
}

/** The client's redirect URI with response parameters added (RFC 6749 §4.1.2) and `iss` (RFC 9207 §2). */
export function authorizationResponseUrl(
  redirectUri: string,
  issuer: string,
  values: Record<string, string | undefined>,
): string {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(values)) if (v !== undefined) url.searchParams.set(k, v);
  url.searchParams.set('iss', issuer);
  return url.href;
}
