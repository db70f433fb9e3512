// Issue 13: a person's own pages. The one-time password link (GET/POST /set-password) works once, before it
// expires, for an enabled person, and only with its CSRF token; changing a password needs the current one and ends
// every other session; connected apps are the signed-in person's own, and Revoke (CSRF-checked) ends the grants,
// forgets the approval, and is seen by /introspect on every instance at once. Sign-out's return_to is never an
// open redirect.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FormBrowser, type PageResult } from '../helpers/browser.ts';
import { DB_KINDS, forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';
import { authorizeUrl, exchangeCode, obtainCode, signedIn } from '../helpers/flow.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  introspect,
  startServer,
  TEST_PASSWORD,
  type TestServer,
} from '../helpers/server.ts';

const NEW_PASSWORD = 'a password of my own';

function alertOf(page: PageResult): string | undefined {
  return /role="alert"[^>]*>([^<]*)</.exec(page.html)?.[1];
}

forEachDatabase('account pages', (kind) => {
  let server: TestServer;

  before(async () => {
    server = await startServer(kind);
  });
  after(() => server.close());

  async function invite(email: string, ttl = 3600): Promise<string> {
    const user = await server.stores.users.create({ email });
    return (await server.stores.accounts.createPasswordLink(user.id, 'invite', ttl, server.clock.now()))
      .token;
  }

  describe('set-password links', () => {
    it('sets the password once: the link then reads expired, and the person signs in with what they chose', async () => {
      const token = await invite('link-once@example.com');
      const b = new FormBrowser(server.url);
      const form = await b.request(`/set-password?token=${token}`);
      assert.equal(form.status, 200);
      assert.match(form.html, /Choose your password/);
      const set = await b.submit(form, '/set-password', {
        new_password: NEW_PASSWORD,
        confirm_password: NEW_PASSWORD,
      });
      assert.equal(set.status, 200);
      assert.match(set.html, /Your password is set/);
      const again = await b.request(`/set-password?token=${token}`);
      assert.equal(again.status, 400);
      assert.match(again.html, /This link no longer works/);
      const replay = await b.submit(form, '/set-password', {
        new_password: 'x'.repeat(12),
        confirm_password: 'x'.repeat(12),
      });
      assert.equal(replay.status, 400, 'a second use changes nothing');
      const login = await b.submit(await b.request('/login'), '/login', {
        email: 'link-once@example.com',
        password: NEW_PASSWORD,
      });
      assert.equal(login.status, 200);
    });

    it('refuses an expired, unknown or superseded link, and a disabled person’s link', async () => {
      const token = await invite('link-expires@example.com', 600);
      const b = new FormBrowser(server.url);
      server.clock.advance(601);
      assert.equal((await b.request(`/set-password?token=${token}`)).status, 400);
      assert.equal((await b.request('/set-password?token=lk_pw_nothing')).status, 400);
      assert.equal((await b.request('/set-password')).status, 400);

      const user = await server.stores.users.findByEmail('link-expires@example.com');
      const older = await server.stores.accounts.createPasswordLink(
        user!.id,
        'reset',
        600,
        server.clock.now(),
      );
      const newer = await server.stores.accounts.createPasswordLink(
        user!.id,
        'reset',
        600,
        server.clock.now(),
      );
      assert.equal((await b.request(`/set-password?token=${older.token}`)).status, 400);
      const page = await b.request(`/set-password?token=${newer.token}`);
      assert.match(page.html, /Choose a new password/);
      await server.stores.accounts.disable('link-expires@example.com', server.clock.now());
      assert.equal((await b.request(`/set-password?token=${newer.token}`)).status, 400);
    });

    it('refuses a missing CSRF token, a short password and two different ones, and keeps the link', async () => {
      const token = await invite('link-checks@example.com');
      const b = new FormBrowser(server.url);
      const form = await b.request(`/set-password?token=${token}`);
      const noCsrf = await b.submit(form, '/set-password', {
        csrf_token: 'forged',
        new_password: NEW_PASSWORD,
        confirm_password: NEW_PASSWORD,
      });
      assert.equal(noCsrf.status, 403);
      const short = await b.submit(form, '/set-password', {
        new_password: 'short',
        confirm_password: 'short',
      });
      assert.equal(short.status, 400);
      assert.match(alertOf(short) ?? '', /at least 8 characters/);
      const differ = await b.submit(form, '/set-password', {
        new_password: NEW_PASSWORD,
        confirm_password: `${NEW_PASSWORD}!`,
      });
      assert.equal(alertOf(differ), 'The two passwords do not match.');
      const ok = await b.submit(form, '/set-password', {
        new_password: NEW_PASSWORD,
        confirm_password: NEW_PASSWORD,
      });
      assert.equal(ok.status, 200, 'the link still works after refused attempts');
    });

    it('signs the person out everywhere when a reset link is used', async () => {
      const email = await addUser(server.stores);
      const before = await signedIn(server, email);
      assert.match((await before.request('/')).html, /Your account/);
      const user = await server.stores.users.findByEmail(email);
      const { token } = await server.stores.accounts.createPasswordLink(
        user!.id,
        'reset',
        600,
        server.clock.now(),
      );
      const b = new FormBrowser(server.url);
      await b.submit(await b.request(`/set-password?token=${token}`), '/set-password', {
        new_password: NEW_PASSWORD,
        confirm_password: NEW_PASSWORD,
      });
      assert.doesNotMatch((await before.request('/')).html, /Your account/);
    });
  });

  describe('change password', () => {
    it('sends a signed-out person to sign in and back', async () => {
      const page = await new FormBrowser(server.url).request('/account/password');
      assert.equal(new URL(page.url).pathname, '/login');
      assert.equal(new URL(page.url).searchParams.get('return_to'), '/account/password');
    });

    it('needs the current password and a valid form, then ends every other session but this one', async () => {
      const email = await addUser(server.stores);
      const here = await signedIn(server, email);
      const elsewhere = await signedIn(server, email);
      const form = await here.request('/account/password');
      const wrong = await here.submit(form, '/account/password', {
        current_password: 'not it',
        new_password: NEW_PASSWORD,
        confirm_password: NEW_PASSWORD,
      });
      assert.equal(wrong.status, 400);
      assert.equal(alertOf(wrong), 'Your current password is not correct.');
      const forged = await here.submit(form, '/account/password', {
        csrf_token: 'forged',
        current_password: TEST_PASSWORD,
        new_password: NEW_PASSWORD,
        confirm_password: NEW_PASSWORD,
      });
      assert.equal(forged.status, 403);
      const done = await here.submit(form, '/account/password', {
        current_password: TEST_PASSWORD,
        new_password: NEW_PASSWORD,
        confirm_password: NEW_PASSWORD,
      });
      assert.equal(done.status, 200);
      assert.match(done.html, /Your password is changed/);
      assert.match((await here.request('/')).html, /Your account/, 'this session stays');
      assert.doesNotMatch((await elsewhere.request('/')).html, /Your account/, 'the other one ended');
      const fresh = new FormBrowser(server.url);
      const old = await fresh.submit(await fresh.request('/login'), '/login', {
        email,
        password: TEST_PASSWORD,
      });
      assert.equal(old.status, 401);
    });
  });

  describe('connected apps', () => {
    it('lists only the signed-in person’s apps; Revoke ends their tokens and the next request asks again', async () => {
      const rs = await addResourceServer(server.stores, 'https://apps.example.com/mcp', 'Apps MCP');
      const client = await addClient(server.stores, { name: 'Listed App' });
      const email = await addUser(server.stores);
      const other = await addUser(server.stores);
      const params = { resource: rs.uri };
      const code = await obtainCode(server, client, email, params);
      const token = String((await exchangeCode(server, client, code, params)).body.access_token);
      await obtainCode(server, client, other, params);
      assert.equal((await introspect(server.url, rs, token)).active, true);

      const b = await signedIn(server, email);
      const list = await b.request('/apps');
      assert.match(list.html, /Listed App/);
      assert.match(list.html, /Apps MCP/);
      assert.doesNotMatch(list.html, /unverified/, 'an operator-registered name is shown as it is');
      assert.equal(list.html.match(/action="\/apps\/revoke"/g)?.length, 1);

      const forged = await b.submit(list, '/apps/revoke', { csrf_token: 'forged' });
      assert.equal(forged.status, 403);
      assert.equal((await introspect(server.url, rs, token)).active, true, 'a forged form revokes nothing');

      const after = await b.submit(list, '/apps/revoke');
      assert.equal(new URL(after.url).pathname, '/apps');
      assert.match(after.html, /You have not connected any apps/);
      assert.deepEqual(await introspect(server.url, rs, token), { active: false });

      // The remembered approval is gone: the next request shows the consent page instead of a code.
      const again = await b.request(authorizeUrl(server, client, params));
      assert.equal(again.redirectedTo, undefined);
      assert.match(again.html, /Allow Listed App/);
      // The other person's approval stands.
      const theirs = await signedIn(server, other);
      assert.ok((await theirs.request(authorizeUrl(server, client, params))).redirectedTo);
    });

    it('always shows the consent page for prompt=consent, even with an approval remembered', async () => {
      const client = await addClient(server.stores, { name: 'Prompted App' });
      const email = await addUser(server.stores);
      await obtainCode(server, client, email);
      const b = await signedIn(server, email);
      assert.ok((await b.request(authorizeUrl(server, client))).redirectedTo, 'remembered');
      const page = await b.request(authorizeUrl(server, client, { prompt: 'consent' }));
      assert.equal(page.redirectedTo, undefined);
      assert.match(page.html, /Allow Prompted App/);
    });

    it('marks a dynamically registered name as unverified on the sign-in, consent and connected-apps pages', async () => {
      const res = await fetch(`${server.url}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'Claude', redirect_uris: ['https://evil.example.net/cb'] }),
      });
      const { client_id: clientId } = (await res.json()) as { client_id: string };
      const email = await addUser(server.stores);
      const url = authorizeUrl(server, {
        clientId,
        clientSecret: undefined,
        redirectUri: 'https://evil.example.net/cb',
      });
      const signIn = await new FormBrowser(server.url).request(url);
      assert.match(
        signIn.html,
        /to continue to <strong>Claude<\/strong> <span class="badge">unverified<\/span>/,
      );
      const b = await signedIn(server, email);
      const consent = await b.request(url);
      assert.match(consent.html, /Allow Claude <span class="badge">unverified<\/span>/);
      assert.match(consent.html, /evil\.example\.net/);
      await b.submit(consent, '/authorize', {}, { name: 'decision', value: 'approve' });
      const apps = await b.request('/apps');
      assert.match(apps.html, /Claude <span class="badge">unverified<\/span>/);
      assert.match(apps.html, /evil\.example\.net/);
    });
  });

  describe('bad input', () => {
    it('answers repeated, oversized, malformed and JSON input with a page, never a 500', async () => {
      const email = await addUser(server.stores);
      const b = await signedIn(server, email);
      const form = await b.request('/account/password');
      const csrf = /name="csrf_token" value="([^"]+)"/.exec(form.html)![1]!;
      for (const [path, init] of [
        ['/set-password?token=a&token=b', {}],
        [`/set-password?token=lk_pw_${'x'.repeat(5000)}`, {}],
        ['/set-password', { method: 'POST', body: new URLSearchParams({ token: 'lk_pw_\u0000' }) }],
        [
          '/set-password',
          { method: 'POST', body: JSON.stringify({ token: ['x'] }), type: 'application/json' },
        ],
        [
          '/apps/revoke',
          {
            method: 'POST',
            body: new URLSearchParams({ csrf_token: csrf, client: "' OR 1=1", resource: 'x' }),
          },
        ],
        [
          '/account/password',
          {
            method: 'POST',
            body: JSON.stringify({ csrf_token: [csrf], new_password: 42 }),
            type: 'application/json',
          },
        ],
      ] as const) {
        const opts = init as { method?: string; body?: URLSearchParams | string; type?: string };
        const res = await fetch(`${server.url}${path}`, {
          method: opts.method ?? 'GET',
          redirect: 'manual',
          headers: {
            cookie: [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
            ...(opts.body ? { 'content-type': opts.type ?? 'application/x-www-form-urlencoded' } : {}),
          },
          body: opts.body,
        });
        assert.ok(res.status < 500, `${path}: ${res.status}`);
        await res.arrayBuffer();
      }
      assert.match((await b.request('/apps')).html, /Connected apps/, 'still signed in, nothing broken');
    });
  });

  describe('unknown pages', () => {
    it('tells a browser in plain words that a page does not exist, and a program in JSON', async () => {
      const html = await fetch(`${server.url}/no-such-page`, { headers: { accept: 'text/html,*/*;q=0.8' } });
      assert.equal(html.status, 404);
      assert.match(html.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
      const text = await html.text();
      assert.match(text, /This page does not exist/);
      assert.match(text, /href="\/"/);
      const json = await fetch(`${server.url}/no-such-page`);
      assert.equal(json.status, 404);
      assert.deepEqual(await json.json(), { error: 'not_found' });
      const post = await fetch(`${server.url}/no-such-page`, {
        method: 'POST',
        headers: { accept: 'text/html' },
      });
      assert.equal(post.status, 404);
      assert.deepEqual(await post.json(), { error: 'not_found' }, 'only GET gets a page');
    });
  });

  describe('sign-out', () => {
    it('goes back to sign-in for the same request, and never to another site', async () => {
      const email = await addUser(server.stores);
      for (const [returnTo, expected] of [
        ['/authorize?client_id=x&state=y', '/login'],
        ['https://evil.example.com/', undefined],
        ['//evil.example.com/authorize?x', undefined],
      ] as const) {
        const b = await signedIn(server, email);
        const page = await b.submit(await b.request('/logout'), '/logout', { return_to: returnTo });
        assert.equal(page.redirectedTo, undefined, returnTo);
        if (expected) {
          assert.equal(new URL(page.url).pathname, expected);
          assert.equal(new URL(page.url).searchParams.get('return_to'), returnTo);
        } else {
          assert.match(page.html, /You are signed out/);
        }
      }
    });

    it('titles the home page "Latchkey" once, and every other page "<page> · Latchkey"', async () => {
      const b = new FormBrowser(server.url);
      assert.match((await b.request('/')).html, /<title>Latchkey<\/title>/);
      assert.match((await b.request('/login')).html, /<title>Sign in · Latchkey<\/title>/);
    });
  });
});

describe('revocation by the person and the operator across instances [postgres]', {
  skip: !DB_KINDS.includes('postgres'),
}, () => {
  let database: TestDatabase;
  let a: TestServer;
  let b: TestServer;

  before(async () => {
    database = await migratedDatabase('postgres');
    a = await startServer('postgres', { database });
    b = await startServer('postgres', { database });
  });
  after(async () => {
    await a.close();
    await b.close();
    await database.cleanup();
  });

  async function liveToken(email: string) {
    const client = await addClient(a.stores);
    const code = await obtainCode(a, client, email);
    return String((await exchangeCode(a, client, code)).body.access_token);
  }

  it('Revoke on one instance and disabling a user out of band read inactive on another instance', async () => {
    const rs = await addResourceServer(a.stores, 'https://mcp.example.com/mcp');
    const email = await addUser(a.stores);
    const token = await liveToken(email);
    assert.equal((await introspect(b.url, rs, token)).active, true);
    assert.equal((await introspect(b.url, rs, token)).active, true, 'cached on b');
    const browser = await signedIn(a, email);
    await browser.submit(await browser.request('/apps'), '/apps/revoke');
    // b has seen every notification sent before its own marker comes back (they arrive in commit order).
    await b.app.latchkey.changes.flush();
    assert.deepEqual(await introspect(b.url, rs, token), { active: false });

    const second = await liveToken(email);
    assert.equal((await introspect(b.url, rs, second)).active, true);
    // As `latchkey user disable` does it: one transaction that NOTIFYs; b's cache drops its answer.
    await a.stores.accounts.disable(email, new Date());
    await b.app.latchkey.changes.flush();
    assert.deepEqual(await introspect(b.url, rs, second), { active: false });
    assert.deepEqual(await introspect(a.url, rs, second), { active: false });
  });
});
