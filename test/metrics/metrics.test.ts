// /metrics (README: Metrics): a full flow moves the counters by exactly what it did, nothing in the scrape carries
// a token, code, secret, password, email or client id of the flow, and /metrics is refused without its token.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomToken } from '../../src/lib/crypto.ts';
import { listenMetrics } from '../../src/metrics/http.ts';
import { sweepOnce } from '../../src/sweeper.ts';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { exchangeCode, obtainCode, postForm, refreshToken } from '../helpers/flow.ts';
import {
  addResourceServer,
  addUser,
  introspect,
  startServer,
  type TestClient,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';

const METRICS_TOKEN = randomToken(32);
const WRONG_PASSWORD = 'not the password at all 0123';

/** The samples of a Prometheus text exposition: name, labels, value. */
function samples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      assert.ok(m, `not a sample line: ${line}`);
      const labels = Object.fromEntries(
        [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
      );
      return { name: m[1]!, labels, value: Number(m[3]) };
    });
}

/** The value of the sample `name` whose labels include `labels` (0 when there is none). */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  const found = samples(text).filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return found.reduce((sum, s) => sum + s.value, 0);
}

async function scrape(url: string, token: string | undefined = METRICS_TOKEN): Promise<string> {
  const res = await fetch(`${url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return res.text();
}

/** Registers a public client through /register (RFC 7591). */
async function register(server: TestServer): Promise<TestClient> {
  const redirectUri = 'http://127.0.0.1:9/callback';
  const res = await fetch(`${server.url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'Metrics test app',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
    }),
  });
  assert.equal(res.status, 201);
  const { client_id } = (await res.json()) as { client_id: string };
  return { clientId: client_id, clientSecret: undefined, redirectUri };
}

forEachDatabase('/metrics after a full flow', (kind) => {
  let server: TestServer;
  let rs: TestResourceServer;

  before(async () => {
    server = await startServer(kind, { env: { METRICS_TOKEN } });
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
  });
  after(() => server.close());

  it('counts what the flow did, and nothing in it names a secret of the flow', async () => {
    const email = await addUser(server.stores);
    const before = await scrape(server.url);
    const secrets: string[] = [email, WRONG_PASSWORD, rs.clientId, rs.clientSecret, METRICS_TOKEN];

    const client = await register(server);
    secrets.push(client.clientId);

    // A failed sign-in.
    const browser = new FormBrowser(server.url);
    const failed = await browser.submit(await browser.request('/login'), '/login', {
      email,
      password: WRONG_PASSWORD,
    });
    assert.equal(failed.status, 401);

    // Grant A: sign-in and consent, the code exchanged, a refresh, the same refresh token again within the
    // reuse window (the same answer), and once more after it (a replay, which revokes the grant).
    const codeA = await obtainCode(server, client, email, { resource: rs.uri });
    const a = await exchangeCode(server, client, codeA, { resource: rs.uri });
    assert.equal(a.status, 200);
    const accessA = a.body.access_token as string;
    const refreshA = a.body.refresh_token as string;
    assert.equal((await introspect(server.url, rs, accessA)).active, true);
    assert.equal((await introspect(server.url, rs, accessA)).active, true);
    const rotated = await refreshToken(server, client, refreshA);
    assert.equal(rotated.status, 200);
    const again = await refreshToken(server, client, refreshA);
    assert.equal(again.status, 200);
    assert.equal(again.body.access_token, rotated.body.access_token);
    server.clock.advance(server.config.refreshReuseWindow + 1);
    const replay = await refreshToken(server, client, refreshA);
    assert.equal(replay.status, 400);
    assert.equal((await introspect(server.url, rs, rotated.body.access_token as string)).active, false);

    // Grant B: its code presented twice (a replay, which revokes the grant).
    const codeB = await obtainCode(server, client, email, { resource: rs.uri });
    const b = await exchangeCode(server, client, codeB, { resource: rs.uri });
    assert.equal(b.status, 200);
    assert.equal((await exchangeCode(server, client, codeB, { resource: rs.uri })).status, 400);

    // Grant C: revoked by the client through /revoke; its access token then introspects inactive.
    const codeC = await obtainCode(server, client, email, { resource: rs.uri });
    const c = await exchangeCode(server, client, codeC, { resource: rs.uri });
    const revoked = await postForm(`${server.url}/revoke`, {
      token: c.body.refresh_token as string,
      client_id: client.clientId,
    });
    assert.equal(revoked.status, 200);
    assert.equal((await introspect(server.url, rs, c.body.access_token as string)).active, false);
    // A refresh token is never active to a resource server (not an access token lookup).
    assert.equal((await introspect(server.url, rs, b.body.refresh_token as string)).active, false);

    for (const r of [a, rotated, b, c])
      secrets.push(r.body.access_token as string, r.body.refresh_token as string);
    secrets.push(codeA, codeB, codeC);

    const after = await scrape(server.url);
    const moved = (name: string, labels: Record<string, string> = {}) =>
      value(after, name, labels) - value(before, name, labels);

    assert.equal(moved('latchkey_client_registrations_total', { kind: 'dcr' }), 1);
    assert.equal(moved('latchkey_client_registrations_total', { kind: 'cimd' }), 0);
    assert.equal(moved('latchkey_sign_ins_total', { method: 'password', result: 'success' }), 3);
    assert.equal(moved('latchkey_sign_ins_total', { method: 'password', result: 'failure' }), 1);
    assert.equal(moved('latchkey_sign_ins_total', { result: 'throttled' }), 0);
    assert.equal(moved('latchkey_tokens_issued_total', { grant_type: 'authorization_code' }), 3);
    // The rotation and the reuse-window answer.
    assert.equal(moved('latchkey_tokens_issued_total', { grant_type: 'refresh_token' }), 2);
    assert.equal(moved('latchkey_refreshes_total', { outcome: 'rotated' }), 1);
    assert.equal(moved('latchkey_refreshes_total', { outcome: 'reuse_window' }), 1);
    assert.equal(moved('latchkey_replays_detected_total', { kind: 'refresh_token' }), 1);
    assert.equal(moved('latchkey_replays_detected_total', { kind: 'authorization_code' }), 1);
    assert.equal(moved('latchkey_revocations_total', { reason: 'refresh_replay', target: 'grant' }), 1);
    assert.equal(moved('latchkey_revocations_total', { reason: 'code_replay', target: 'grant' }), 1);
    assert.equal(moved('latchkey_revocations_total', { reason: 'client', target: 'grant' }), 1);
    assert.equal(moved('latchkey_revocations_total'), 3);
    assert.equal(moved('latchkey_introspections_total', { result: 'active' }), 2);
    assert.equal(moved('latchkey_introspections_total', { result: 'inactive' }), 3);
    // Every access token lookup is either answered from memory or from the database; the first is a miss.
    const hits = moved('latchkey_introspection_cache_total', { result: 'hit' });
    const misses = moved('latchkey_introspection_cache_total', { result: 'miss' });
    assert.equal(hits + misses, 4);
    assert.ok(misses >= 3, `misses: ${misses}`);

    // Requests by route pattern and status: /token answered 200 five times and 400 twice.
    const token = { method: 'POST', route: '/token' };
    assert.equal(moved('latchkey_http_requests_total', { ...token, status: '200' }), 5);
    assert.equal(moved('latchkey_http_requests_total', { ...token, status: '400' }), 2);
    assert.equal(moved('latchkey_http_request_duration_seconds_count', { ...token, status: '200' }), 5);
    assert.equal(moved('latchkey_http_requests_total', { method: 'POST', route: '/introspect' }), 5);
    assert.equal(
      moved('latchkey_http_requests_total', { method: 'POST', route: '/login', status: '401' }),
      1,
    );
    assert.equal(moved('latchkey_http_requests_total', { method: 'GET', route: '/authorize' }) >= 3, true);
    // Process metrics, and the pool where there is one.
    assert.ok(value(after, 'process_cpu_user_seconds_total') > 0);
    assert.ok(value(after, 'nodejs_heap_size_used_bytes') > 0);
    const pool = samples(after).filter((s) => s.name === 'latchkey_db_pool_connections');
    if (kind === 'postgres') {
      assert.deepEqual(pool.map((s) => s.labels.state).sort(), ['idle', 'total', 'waiting']);
      assert.ok(value(after, 'latchkey_db_pool_connections', { state: 'total' }) >= 1);
    } else assert.deepEqual(pool, []);

    // Routes are patterns, never raw URLs (no query string, no client id), and no secret appears anywhere.
    const routes = new Set(samples(after).flatMap((s) => (s.labels.route ? [s.labels.route] : [])));
    for (const route of routes) assert.match(route, /^(\/[\w\-.:*/]*|unmatched)$/, route);
    for (const secret of secrets) {
      assert.ok(secret.length >= 16, 'every secret checked is long enough to be unambiguous');
      assert.equal(after.includes(secret), false, `the scrape contains ${secret.slice(0, 6)}…`);
      assert.equal(after.includes(encodeURIComponent(secret)), false);
    }
    assert.equal(/@|example\.com|password=|Bearer/i.test(after), false);
  });

  it('counts requests no route matched as route="unmatched"', async () => {
    const before = value(await scrape(server.url), 'latchkey_http_requests_total', { route: 'unmatched' });
    const secretPath = `/${randomToken(24)}`;
    const res = await fetch(`${server.url}${secretPath}`, { method: 'POST' });
    assert.equal(res.status, 404);
    const after = await scrape(server.url);
    assert.equal(
      value(after, 'latchkey_http_requests_total', { route: 'unmatched', status: '404' }) - before,
      1,
    );
    assert.equal(after.includes(secretPath), false);
  });

  it('refuses /metrics without the token, and with a wrong one', async () => {
    const none = await fetch(`${server.url}/metrics`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.equal(((await none.json()) as { error: string }).error, 'invalid_token');
    for (const authorization of [
      `Bearer ${randomToken(32)}`,
      `Bearer ${METRICS_TOKEN}x`,
      `Basic ${METRICS_TOKEN}`,
    ]) {
      const wrong = await fetch(`${server.url}/metrics`, { headers: { authorization } });
      assert.equal(wrong.status, 401, authorization.slice(0, 6));
      assert.match(wrong.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
  });

  it('counts sweeper runs and the rows they remove', async () => {
    const before = await scrape(server.url);
    const silent = { info() {}, warn() {} };
    await sweepOnce(server.database.db, server.config, server.clock, silent, server.app.latchkey.metrics);
    server.clock.advance(server.config.refreshTokenTtl + 86_400 * 2);
    await sweepOnce(server.database.db, server.config, server.clock, silent, server.app.latchkey.metrics);
    const after = await scrape(server.url);
    const moved = (name: string, labels: Record<string, string> = {}) =>
      value(after, name, labels) - value(before, name, labels);
    assert.equal(moved('latchkey_sweeper_runs_total', { result: 'ok' }), 2);
    assert.equal(moved('latchkey_sweeper_runs_total', { result: 'failed' }), 0);
    // The flow above left expired codes and tokens behind.
    assert.ok(moved('latchkey_sweeper_rows_removed_total', { kind: 'accessTokens' }) >= 3);
    assert.ok(moved('latchkey_sweeper_rows_removed_total', { kind: 'authorizationCodes' }) >= 3);
  });

  it('counts throttled sign-ins apart from failed ones', async () => {
    const before = await scrape(server.url);
    const browser = new FormBrowser(server.url);
    const email = `nobody-${randomToken(6).toLowerCase()}@example.com`;
    const statuses: number[] = [];
    for (let i = 0; i < server.config.loginMaxAttemptsPerAccount + 3 && !statuses.includes(429); i++) {
      const page = await browser.request('/login');
      statuses.push((await browser.submit(page, '/login', { email, password: WRONG_PASSWORD })).status);
    }
    assert.equal(statuses.at(-1), 429, statuses.join(' '));
    const after = await scrape(server.url);
    const moved = (result: string) =>
      value(after, 'latchkey_sign_ins_total', { method: 'password', result }) -
      value(before, 'latchkey_sign_ins_total', { method: 'password', result });
    assert.equal(moved('throttled'), 1);
    assert.equal(moved('failure'), statuses.length - 1);
    assert.equal(moved('success'), 0);
    assert.equal(after.includes(email), false);
  });
});

describe('where /metrics is served', () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });
  const start = async (env: Record<string, string>) => {
    const s = await startServer('pglite', { env });
    servers.push(s);
    return s;
  };

  it('is off by default: no /metrics anywhere', async () => {
    const s = await start({});
    assert.equal((await fetch(`${s.url}/metrics`)).status, 404);
    assert.equal(await listenMetrics(s.app), undefined);
    assert.equal(s.app.latchkey.metrics.enabled, false);
  });

  it('with METRICS_PORT, only on a listener of its own: the public listener has no /metrics', async () => {
    const s = await start({ METRICS_PORT: '0' });
    const at = await listenMetrics(s.app);
    assert.ok(at);
    assert.equal(new URL(at).hostname, '127.0.0.1');
    assert.equal((await fetch(`${s.url}/metrics`)).status, 404);
    const text = await scrape(at, undefined);
    assert.ok(value(text, 'latchkey_sign_ins_total') === 0 && text.includes('latchkey_tokens_issued_total'));
    assert.equal((await fetch(`${at}/token`, { method: 'POST' })).status, 404);
  });

  it('with METRICS_PORT and METRICS_TOKEN, the separate listener requires the token too', async () => {
    const s = await start({ METRICS_PORT: '0', METRICS_TOKEN });
    const at = await listenMetrics(s.app);
    assert.ok(at);
    assert.equal((await fetch(`${s.url}/metrics`)).status, 404);
    assert.equal(
      (await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status,
      404,
    );
    assert.equal((await fetch(`${at}/metrics`)).status, 401);
    await scrape(at);
  });
});
