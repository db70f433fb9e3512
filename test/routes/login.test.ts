// Sign-in and sessions: throttling per account and per address without revealing which emails exist, cookie
// attributes, idle and absolute expiry, and sign-out.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { signedIn } from '../helpers/flow.ts';
import { addUser, startServer, TEST_PASSWORD, type TestServer } from '../helpers/server.ts';

async function attempt(browser: FormBrowser, email: string, password: string) {
  const page = await browser.request('/login');
  return browser.submit(page, '/login', { email, password });
}

forEachDatabase('sign-in', (kind) => {
  let server: TestServer;

  before(async () => {
    server = await startServer(kind, {
      env: {
        LOGIN_MAX_ATTEMPTS_PER_ACCOUNT: '3',
        LOGIN_MAX_ATTEMPTS_PER_ADDRESS: '8',
        LOGIN_THROTTLE_WINDOW: '900',
        SESSION_IDLE_TTL: '3600',
        SESSION_TTL: '86400',
      },
    });
  });
  after(() => server.close());

  describe('throttling', () => {
    it('gives the same answer for an unknown email and a wrong password', async () => {
      const email = await addUser(server.stores);
      const b = new FormBrowser(server.url);
      const wrong = await attempt(b, email, 'not the password');
      const unknown = await attempt(b, 'nobody-here@example.com', 'not the password');
      assert.equal(wrong.status, 401);
      assert.equal(unknown.status, 401);
      const message = (html: string) => /role="alert"[^>]*>([^<]*)</.exec(html)?.[1];
      assert.equal(message(wrong.html), message(unknown.html));
      assert.equal(message(wrong.html), 'Email or password is incorrect.');
      await server.database.db.prisma.rateLimit.deleteMany({});
    });

    it('throttles an account after LOGIN_MAX_ATTEMPTS_PER_ACCOUNT failures, even with the right password, until the window passes', async () => {
      const email = await addUser(server.stores);
      const b = new FormBrowser(server.url);
      for (let i = 0; i < 3; i++) assert.equal((await attempt(b, email, 'wrong password')).status, 401);
      const blocked = await attempt(b, email, TEST_PASSWORD);
      assert.equal(blocked.status, 429);
      assert.match(blocked.html, /Too many sign-in attempts/);
      assert.ok(Number(blocked.headers.get('retry-after')) > 0);
      // Unknown emails are throttled the same way, so the answer reveals nothing.
      for (let i = 0; i < 3; i++) await attempt(b, 'ghost@example.com', 'wrong password');
      assert.equal((await attempt(b, 'ghost@example.com', 'wrong password')).status, 429);
      server.clock.advance(901);
      assert.equal((await attempt(b, email, TEST_PASSWORD)).status, 200);
      await server.database.db.prisma.rateLimit.deleteMany({});
    });

    it('throttles a client address after LOGIN_MAX_ATTEMPTS_PER_ADDRESS failures across accounts', async () => {
      const b = new FormBrowser(server.url);
      for (let i = 0; i < 8; i++) await attempt(b, `spray-${i}@example.com`, 'wrong password');
      const email = await addUser(server.stores);
      assert.equal((await attempt(b, email, TEST_PASSWORD)).status, 429);
      server.clock.advance(901);
      assert.equal((await attempt(b, email, TEST_PASSWORD)).status, 200);
      await server.database.db.prisma.rateLimit.deleteMany({});
    });

    it('resets the account counter after a successful sign-in', async () => {
      const email = await addUser(server.stores);
      const b = new FormBrowser(server.url);
      await attempt(b, email, 'wrong password');
      await attempt(b, email, 'wrong password');
      assert.equal((await attempt(b, email, TEST_PASSWORD)).status, 200);
      const b2 = new FormBrowser(server.url);
      await attempt(b2, email, 'wrong password');
      await attempt(b2, email, 'wrong password');
      assert.equal((await attempt(b2, email, TEST_PASSWORD)).status, 200);
      await server.database.db.prisma.rateLimit.deleteMany({});
    });

    it('refuses a disabled user with the same generic answer', async () => {
      const email = await addUser(server.stores);
      await server.database.db.prisma.user.update({ where: { email }, data: { disabled: true } });
      assert.equal((await attempt(new FormBrowser(server.url), email, TEST_PASSWORD)).status, 401);
      await server.database.db.prisma.rateLimit.deleteMany({});
    });
  });

  describe('the sign-in page', () => {
    it('shows the password form alone when it is the only configured method (no provider block)', async () => {
      const page = await new FormBrowser(server.url).request('/login');
      assert.equal(page.status, 200);
      assert.equal((page.html.match(/<form /g) ?? []).length, 1);
      assert.match(page.html, /<form method="post" action="\/login" novalidate>/);
      assert.doesNotMatch(page.html, /signin-buttons|\/login\/upstream\//);
      assert.match(page.headers.get('content-security-policy') ?? '', /form-action 'self';/);
    });
  });

  describe('sessions', () => {
    it('sets an HttpOnly, SameSite=Lax session cookie stored only as a hash', async () => {
      const email = await addUser(server.stores);
      const b = new FormBrowser(server.url);
      const page = await b.request('/login');
      const form = new URLSearchParams({ email, password: TEST_PASSWORD, return_to: '/' });
      const csrf = /name="csrf_token" value="([^"]+)"/.exec(page.html)![1]!;
      form.set('csrf_token', csrf);
      const res = await fetch(`${server.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          cookie: [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        },
        body: form,
      });
      assert.equal(res.status, 303);
      const cookie = res.headers.getSetCookie().find((c) => c.startsWith('latchkey_session='))!;
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Lax/);
      assert.doesNotMatch(cookie, /Secure/, 'plain http issuer: no Secure flag');
      const value = cookie.split(';')[0]!.split('=')[1]!;
      const rows = await server.database.db.prisma.session.findMany();
      assert.ok(rows.every((r) => r.tokenHash !== value));
    });

    it('marks the cookie Secure with the __Host- prefix when ISSUER is https', async () => {
      const s2 = await startServer(kind, { env: { ISSUER: 'https://auth.example.com' } });
      try {
        const res = await s2.app.inject({ method: 'GET', url: '/login' });
        const cookie = String(res.headers['set-cookie']);
        assert.match(cookie, /^__Host-latchkey_csrf=/);
        assert.match(cookie, /Secure/);
        assert.match(cookie, /Path=\//);
      } finally {
        await s2.close();
      }
    });

    it('ends a session after SESSION_IDLE_TTL without use', async () => {
      const b = await signedIn(server, await addUser(server.stores));
      assert.match((await b.request('/')).html, /You are signed in/);
      server.clock.advance(3601);
      assert.doesNotMatch((await b.request('/')).html, /You are signed in/);
    });

    it('slides the idle expiry with use but ends the session at SESSION_TTL', async () => {
      const b = await signedIn(server, await addUser(server.stores));
      for (let i = 0; i < 30; i++) {
        server.clock.advance(3000);
        if (i < 28)
          assert.match(
            (await b.request('/')).html,
            /You are signed in/,
            `still signed in after ${(i + 1) * 3000}s`,
          );
      }
      assert.doesNotMatch((await b.request('/')).html, /You are signed in/);
    });

    it('signs out with a CSRF-protected POST and the cookie stops working', async () => {
      const b = await signedIn(server, await addUser(server.stores));
      const token = b.cookies.get('latchkey_session')!;
      const home = await b.request('/');
      const forged = await fetch(`${server.url}/logout`, {
        method: 'POST',
        headers: { cookie: `latchkey_session=${token}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: '',
      });
      assert.equal(forged.status, 200);
      assert.match(
        (await b.request('/')).html,
        /You are signed in/,
        'a POST without the token signs nobody out',
      );
      await b.submit(home, '/logout');
      const again = await fetch(`${server.url}/`, { headers: { cookie: `latchkey_session=${token}` } });
      assert.doesNotMatch(await again.text(), /You are signed in/);
    });

    it('refuses a sign-in form without the CSRF token', async () => {
      const email = await addUser(server.stores);
      const b = new FormBrowser(server.url);
      const page = await b.request('/login');
      const res = await b.submit(page, '/login', { email, password: TEST_PASSWORD, csrf_token: 'forged' });
      assert.equal(res.status, 403);
      assert.equal(b.cookies.has('latchkey_session'), false);
    });

    it('never returns to a URL outside Latchkey after sign-in (no open redirect)', async () => {
      const email = await addUser(server.stores);
      for (const returnTo of [
        'https://evil.example.com/',
        '//evil.example.com/',
        '/\\evil.example.com',
        '/authorize-not',
      ]) {
        const b = new FormBrowser(server.url);
        const page = await b.request(`/login?return_to=${encodeURIComponent(returnTo)}`);
        const res = await b.submit(page, '/login', { email, password: TEST_PASSWORD });
        assert.equal(res.redirectedTo, undefined, `must not leave Latchkey for ${returnTo}`);
        assert.equal(new URL(res.url).pathname, '/');
      }
    });

    it('returns to a return_to holding characters a header cannot carry as they are, encoded', async () => {
      const email = await addUser(server.stores);
      const returnTo = '/authorize?client_id=x&state=€ é 😀';
      const b = new FormBrowser(server.url);
      const page = await b.request(`/login?return_to=${encodeURIComponent(returnTo)}`);
      assert.equal(page.status, 200);
      const res = await b.submit(page, '/login', { email, password: TEST_PASSWORD });
      assert.equal(new URL(res.url).pathname, '/authorize');
      assert.equal(new URL(res.url).searchParams.get('state'), '€ é 😀');
      const again = await b.request(`/login?return_to=${encodeURIComponent(returnTo)}`);
      assert.equal(new URL(again.url).searchParams.get('state'), '€ é 😀', 'signed in already');
    });
  });
});
