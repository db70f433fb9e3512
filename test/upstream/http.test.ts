// Every upstream call goes through limitedFetch: a time limit, no redirects followed, at most 64 KiB of body.
// And buildApp's upstreamFetch carries every server-to-server call of a preset with its default URLs (github.com,
// api.github.com), here routed to the GitHub stand-in.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { limitedFetch, UPSTREAM_MAX_BYTES, UpstreamUnreachable } from '../../src/upstream/http.ts';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { alertOf, pressProvider, startFederated } from '../helpers/federation.ts';
import { GitHubStandin } from '../helpers/github-standin.ts';
import { freePort, type TestServer } from '../helpers/server.ts';

describe('limitedFetch', () => {
  let server: http.Server;
  let base: string;
  const hanging = new Set<http.ServerResponse>();
  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/big') res.end('x'.repeat(UPSTREAM_MAX_BYTES + 1));
      else if (req.url === '/fits') res.end('x'.repeat(UPSTREAM_MAX_BYTES));
      else if (req.url === '/redirect') res.writeHead(302, { location: '/fits' }).end();
      else hanging.add(res); // never answers
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const fetch = () => limitedFetch((url, init) => globalThis.fetch(url, init), 1);

  test('a body over 64 KiB is refused; exactly 64 KiB is read', async () => {
    await assert.rejects(
      fetch()(`${base}/big`),
      (e: unknown) => e instanceof UpstreamUnreachable && e.reason === 'too_large',
    );
    assert.equal((await (await fetch()(`${base}/fits`)).text()).length, UPSTREAM_MAX_BYTES);
  });

  test('no answer within the time limit → timeout; redirects are not followed', async () => {
    await assert.rejects(
      fetch()(`${base}/hang`),
      (e: unknown) => e instanceof UpstreamUnreachable && e.reason === 'timeout',
    );
    assert.equal((await fetch()(`${base}/redirect`)).status, 302);
  });

  test('a refused connection → network', async () => {
    const closed = await freePort();
    await assert.rejects(
      fetch()(`http://127.0.0.1:${closed}/`),
      (e: unknown) => e instanceof UpstreamUnreachable && e.reason === 'network',
    );
  });
});

forEachDatabase('upstreamFetch routes a preset’s default URLs', (kind) => {
  let gh: GitHubStandin;
  let server: TestServer;
  before(async () => {
    const port = await freePort();
    gh = await GitHubStandin.start({
      redirectUris: [`http://127.0.0.1:${port}/login/upstream/github/callback`],
    });
    server = await startFederated(kind, {
      port,
      env: { UPSTREAM_ALLOW_INSECURE_LOOPBACK: 'false', LOGIN_MAX_ATTEMPTS_PER_ADDRESS: '3' },
      upstreamFetch: (url, init) =>
        globalThis.fetch(url.replace(/^https:\/\/(api\.)?github\.com/, gh.url), init),
      providers: () => [
        {
          id: 'github',
          type: 'github',
          client_id: gh.clientId,
          client_secret: gh.clientSecret,
          create_users: true,
          allow_anyone: true,
        },
      ],
    });
  });
  after(async () => {
    await server?.close();
    await gh?.close();
  });

  test('the browser is sent to github.com; token and API calls go through upstreamFetch', async () => {
    const user = gh.addUser();
    gh.signedInAs = user.id;
    const browser = new FormBrowser(server.url);
    const login = await browser.request('/login');
    assert.match(
      login.headers.get('content-security-policy') ?? '',
      /form-action 'self' https:\/\/github\.com;/,
    );
    const started = await pressProvider(browser, login, 'github');
    const location = new URL(started.redirectedTo!);
    assert.equal(location.origin, 'https://github.com');
    assert.equal(location.pathname, '/login/oauth/authorize');
    // Play github.com's part with the stand-in: it sends the browser back to Latchkey's callback.
    const done = await browser.request(`${gh.url}${location.pathname}${location.search}`);
    assert.equal(done.status, 200, alertOf(done));
    assert.ok(await server.stores.upstream.findIdentity('github', String(user.id)));
    assert.deepEqual(
      gh.requests.map((r) => r.endpoint),
      ['authorize', 'token', 'user', 'emails'],
    );
  });

  test('starts are limited per address (LOGIN_MAX_ATTEMPTS_PER_ADDRESS): 429 with Retry-After', async () => {
    const browser = new FormBrowser(server.url);
    const login = await browser.request('/login');
    const statuses: number[] = [];
    let last = login;
    for (let i = 0; i < 4; i++) {
      last = await pressProvider(browser, login, 'github');
      statuses.push(last.status);
    }
    assert.equal(statuses.at(-1), 429, statuses.join(','));
    assert.ok(Number(last.headers.get('retry-after')) > 0);
    assert.match(alertOf(last) ?? '', /^Too many sign-in attempts\./);
  });
});
