// Building blocks for protocol tests: authorization URLs, signed-in browsers, and code/token requests.
import assert from 'node:assert/strict';
import { calculateS256Challenge } from '../../src/oauth/pkce.ts';
import { FormBrowser } from './browser.ts';
import { TEST_PASSWORD, type TestClient, type TestServer } from './server.ts';

export const VERIFIER = 'test-verifier-0123456789-0123456789-0123456789-abcdef';
export const CHALLENGE = calculateS256Challenge(VERIFIER);

export function authorizeUrl(
  server: TestServer,
  client: TestClient,
  params: Record<string, string | string[] | undefined> = {},
): string {
  const q = new URLSearchParams();
  const all: Record<string, string | string[] | undefined> = {
    client_id: client.clientId,
    redirect_uri: client.redirectUri,
    response_type: 'code',
    code_challenge: CHALLENGE,
    code_challenge_method: 'S256',
    state: 'state-123',
    scope: 'mcp',
    ...params,
  };
  for (const [k, v] of Object.entries(all)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, one);
  }
  return `${server.url}/authorize?${q}`;
}

export async function signedIn(server: TestServer, email: string): Promise<FormBrowser> {
  const browser = new FormBrowser(server.url);
  const page = await browser.request('/login');
  const after = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
  assert.equal(after.status, 200, `sign-in failed: ${after.html.slice(0, 300)}`);
  return browser;
}

/** Runs the whole front channel and returns the code. */
export async function obtainCode(
  server: TestServer,
  client: TestClient,
  email: string,
  params: Record<string, string | string[] | undefined> = {},
): Promise<string> {
  const browser = new FormBrowser(server.url);
  const callback = await browser.authorize(authorizeUrl(server, client, params), {
    email,
    password: TEST_PASSWORD,
  });
  const code = callback.searchParams.get('code');
  assert.ok(code, `no code in ${callback.href}`);
  return code;
}

export interface TokenResponse {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** POSTs a form to `url` and reads the JSON answer (empty body → {}). */
export async function postForm(
  url: string,
  params: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<TokenResponse> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

export function tokenRequest(
  server: TestServer,
  params: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<TokenResponse> {
  return postForm(`${server.url}/token`, params, headers);
}

export function exchangeCode(
  server: TestServer,
  client: TestClient,
  code: string,
  extra: Record<string, string> = {},
) {
  return tokenRequest(server, {
    grant_type: 'authorization_code',
    code,
    code_verifier: VERIFIER,
    redirect_uri: client.redirectUri,
    client_id: client.clientId,
    ...(client.clientSecret ? { client_secret: client.clientSecret } : {}),
    ...extra,
  });
}

export function refreshToken(
  server: TestServer,
  client: TestClient,
  token: string,
  extra: Record<string, string> = {},
) {
  return tokenRequest(server, {
    grant_type: 'refresh_token',
    refresh_token: token,
    client_id: client.clientId,
    ...(client.clientSecret ? { client_secret: client.clientSecret } : {}),
    ...extra,
  });
}
