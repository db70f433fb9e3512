// The shared parts of the `latchkey user` process tests (cli.test.ts, cli-sharing.test.ts): data directories
// removed after the file, the users a stopped server's directory holds, and the OAuth traffic a running server serves
// while commands write through its socket.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after } from 'node:test';
import { openEmbedded } from '../../src/db/embedded.ts';
import type { User } from '../../src/generated/prisma/client.ts';
import { calculateS256Challenge } from '../../src/oauth/pkce.ts';
import { FormBrowser } from './browser.ts';
import { runCli, tempDir } from './server-process.ts';

export const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

export async function newDataDir(): Promise<string> {
  const dir = await tempDir('latchkey-cli-');
  cleanups.push(dir.remove);
  return join(dir.path, 'data');
}

/** The users in a stopped server's directory, opened directly. */
export async function readUsers(dataDir: string): Promise<User[]> {
  const db = await openEmbedded({ dataDir });
  try {
    return await db.prisma.user.findMany({ orderBy: { email: 'asc' } });
  } finally {
    await db.close();
  }
}

export function addUser(env: Record<string, string>, email: string, password: string, ...extra: string[]) {
  return runCli(['user', 'add', email, '--password-stdin', ...extra], { env, input: `${password}\n` });
}

/** The email column of `latchkey user list`'s table. */
export function listedEmails(stdout: string): string[] {
  return stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(/\s+/)[0]!)
    .sort();
}

export function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function registerClient(url: string, name: string): Promise<string> {
  const res = await fetch(`${url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: name, redirect_uris: ['http://127.0.0.1:9/callback'] }),
  });
  const body = (await res.json()) as { client_id: string };
  assert.equal(res.status, 201, JSON.stringify(body));
  return body.client_id;
}

export async function failSignIn(url: string, email: string): Promise<void> {
  const browser = new FormBrowser(url);
  const page = await browser.request('/login');
  const after = await browser.submit(page, '/login', { email, password: 'not the password' });
  assert.ok(after.status >= 400 && after.status < 500, `a failed sign-in is refused (${after.status})`);
}

/** Registers a client, signs in, approves, exchanges the code and refreshes once; returns the live refresh token. */
export async function runCodeFlow(
  url: string,
  email: string,
  password: string,
): Promise<{ refreshToken: string }> {
  const res = await fetch(`${url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'flow client',
      redirect_uris: ['http://127.0.0.1:9/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
    }),
  });
  const { client_id: clientId } = (await res.json()) as { client_id: string };
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL(`${url}/authorize`);
  authorize.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: 'http://127.0.0.1:9/callback',
    response_type: 'code',
    code_challenge: calculateS256Challenge(verifier),
    code_challenge_method: 'S256',
    state: 'flow',
    scope: 'mcp',
  }).toString();
  const callback = await new FormBrowser(url).authorize(authorize.href, { email, password });
  const code = callback.searchParams.get('code');
  assert.ok(code, callback.href);
  const tokens = await token(url, {
    grant_type: 'authorization_code',
    code,
    code_verifier: verifier,
    redirect_uri: 'http://127.0.0.1:9/callback',
    client_id: clientId,
  });
  const refreshed = await token(url, {
    grant_type: 'refresh_token',
    refresh_token: tokens.refresh_token!,
    client_id: clientId,
  });
  return { refreshToken: refreshed.refresh_token! };
}

export async function token(
  url: string,
  params: Record<string, string>,
): Promise<{ refresh_token?: string }> {
  const res = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  });
  const body = (await res.json()) as { refresh_token?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.ok(body.refresh_token, 'a refresh token is issued');
  return body;
}
