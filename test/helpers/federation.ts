// Building blocks for the federated sign-in tests (test/upstream/): a Latchkey listener configured with upstream
// providers (its port chosen first, so the upstream can register the exact callback), the sign-in page's forms,
// and the front channel through an upstream provider with a FormBrowser.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { loggerOptions } from '../../src/logger.ts';
import { type FormBrowser, type PageResult, parseForms } from './browser.ts';
import type { DbKind } from './db.ts';
import { authorizeUrl } from './flow.ts';
import { freePort, startServer, type TestClient, type TestServer, type TestServerOptions } from './server.ts';

/** A fixed key for tests: `k1` encrypts. */
export const TEST_KEY_K1 = `k1:${Buffer.alloc(32, 1).toString('base64url')}`;
export const TEST_KEY_K2 = `k2:${Buffer.alloc(32, 2).toString('base64url')}`;

export interface FederatedServerOptions extends Omit<TestServerOptions, 'port'> {
  /** The UPSTREAM_PROVIDERS entries, built once the issuer is known. */
  providers: (issuer: string) => Record<string, unknown>[];
  /** Before the listener starts: start upstreams that must know the callback URI. */
  port?: number;
}

export async function startFederated(kind: DbKind, options: FederatedServerOptions): Promise<TestServer> {
  const port = options.port ?? (await freePort());
  const issuer = `http://127.0.0.1:${port}`;
  return startServer(kind, {
    ...options,
    port,
    env: {
      UPSTREAM_PROVIDERS: JSON.stringify(options.providers(issuer)),
      UPSTREAM_ALLOW_INSECURE_LOOPBACK: 'true',
      UPSTREAM_TOKEN_KEYS: TEST_KEY_K1,
      ...options.env,
    },
  });
}

export function callbackUri(issuer: string, id: string): string {
  return `${issuer}/login/upstream/${id}/callback`;
}

/** From a sign-in page, presses the button of provider `id` (the browser follows to the upstream when allowed). */
export function pressProvider(browser: FormBrowser, page: PageResult, id: string): Promise<PageResult> {
  return browser.submit(page, `/login/upstream/${id}`);
}

/** Opens /authorize for `client` at `resource`: the sign-in page (the browser follows the redirect to /login). */
export async function openAuthorize(
  server: TestServer,
  browser: FormBrowser,
  client: TestClient,
  params: Record<string, string> = {},
): Promise<PageResult> {
  const page = await browser.request(authorizeUrl(server, client, params));
  assert.equal(page.status, 200, `expected the sign-in page, got ${page.status} ${page.redirectedTo ?? ''}`);
  return page;
}

/** Approves the consent page and returns the client's callback URL. */
export async function approve(browser: FormBrowser, consent: PageResult): Promise<URL> {
  assert.ok(
    parseForms(consent.html).some((f) => f.action === '/authorize'),
    `expected the consent page, got ${consent.status} ${consent.url}: ${consent.html.slice(0, 400)}`,
  );
  const back = await browser.submit(consent, '/authorize', {}, { name: 'decision', value: 'approve' });
  assert.ok(back.redirectedTo, 'the consent did not return to the client');
  return new URL(back.redirectedTo);
}

/** The alert text of a page (`role="alert"`), entities decoded. */
export function alertOf(page: PageResult): string | undefined {
  const m = /role="alert"[^>]*>([^<]*)</.exec(page.html);
  return m?.[1]
    ?.replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}

/** Every log line the app wrote, as parsed JSON, plus the raw text (for "never logged" assertions). */
export function captureLogs(level: 'info' | 'debug' = 'info') {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(line);
      done();
    },
  });
  const logger = pino(loggerOptions(level), stream);
  return {
    logger,
    lines,
    parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    text: () => lines.join('\n'),
  };
}

export function randomId(): string {
  return randomBytes(4).toString('hex');
}
