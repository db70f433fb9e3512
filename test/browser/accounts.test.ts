// Issue 13, acceptance 1, in real headless Chromium: a person invited by link sets their own password and signs in;
// the connected-apps page lists what they approved, and Revoke makes the app's token inactive at /introspect and
// its next /authorize ask again; changing the password ends the person's other sessions. Every page passes axe-core
// (no serious or critical violation) and causes no CSP violation. Screenshots go to docs/screenshots/.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { ManualClock } from '../../src/lib/clock.ts';
import {
  addResourceServer,
  addUser,
  introspect,
  startServer,
  TEST_PASSWORD,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';
import {
  assertAccessible,
  type CallbackServer,
  type HostProxy,
  launchChromium,
  PageAudit,
  startCallbackServer,
  startHostProxy,
} from './harness.ts';

const ISSUER = 'http://localhost:3000';
const APP_ORIGIN = 'http://127.0.0.1:33418';
const REDIRECT_URI = `${APP_ORIGIN}/callback`;
const RESOURCE = 'https://mcp.example.com/mcp';
const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));
const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 }, colorScheme: 'light' };
// A fixed time, so the dates on the pages (and in the screenshots) are the same on every run.
const START = new Date('2026-11-30T09:00:00Z');

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true, animations: 'disabled' });
}

describe('accounts and connected apps in headless Chromium', () => {
  let server: TestServer;
  let rs: TestResourceServer;
  let callback: CallbackServer;
  let proxy: HostProxy;
  let browser: Browser;

  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    server = await startServer('pglite', { env: { ISSUER }, clock: new ManualClock(START) });
    rs = await addResourceServer(server.stores, RESOURCE, 'Team Notes');
    callback = await startCallbackServer(APP_ORIGIN);
    proxy = await startHostProxy({
      [new URL(ISSUER).host]: Number(new URL(server.url).port),
      [new URL(APP_ORIGIN).host]: callback.port,
    });
    browser = await launchChromium(proxy);
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
    await callback?.close();
    await server?.close();
  });

  /** A page in a fresh browser context (its own cookies), audited: framing refused, no script, no CSP violation. */
  async function withPage<T>(
    fn: (page: Page) => Promise<T>,
    options: BrowserContextOptions = {},
  ): Promise<T> {
    const context = await browser.newContext({ ...DESKTOP, ...options });
    try {
      const page = await context.newPage();
      const audit = new PageAudit(page, ISSUER);
      const result = await fn(page);
      await audit.checkedPages();
      return result;
    } finally {
      await context.close();
    }
  }

  async function signIn(page: Page, email: string, password = TEST_PASSWORD): Promise<void> {
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByLabel('Password', { exact: true }).press('Enter');
  }

  /** A client registered the way Claude does (RFC 7591), under a name it chose itself. */
  async function registerClient(name: string): Promise<string> {
    const res = await fetch(`${server.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: name, redirect_uris: [REDIRECT_URI] }),
    });
    assert.equal(res.status, 201);
    return ((await res.json()) as { client_id: string }).client_id;
  }

  function authorization(clientId: string) {
    const verifier = randomBytes(32).toString('base64url');
    const url = new URL('/authorize', ISSUER);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: REDIRECT_URI,
      scope: 'mcp',
      state: randomBytes(8).toString('base64url'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      resource: RESOURCE,
    }).toString();
    return { url: url.href, clientId, verifier };
  }

  async function landOnCallback(page: Page): Promise<URLSearchParams> {
    await page.waitForURL((u) => u.href.startsWith(`${REDIRECT_URI}?`));
    return new URL(page.url()).searchParams;
  }

  async function accessToken(clientId: string, verifier: string, code: string): Promise<string> {
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT_URI,
        client_id: clientId,
        code_verifier: verifier,
        resource: RESOURCE,
      }),
    });
    assert.equal(res.status, 200);
    return String(((await res.json()) as { access_token: string }).access_token);
  }

  it('an invited person sets a password from the one-time link, then signs in; the link works only once', async () => {
    const user = await server.stores.users.create({ email: 'new.person@example.com' });
    const { token } = await server.stores.accounts.createPasswordLink(user.id, 'invite', 3600, START);
    const link = `${ISSUER}/set-password?token=${token}`;
    await withPage(async (page) => {
      await page.goto(ISSUER);
      await page.getByRole('heading', { name: 'Sign in to approve your apps' }).waitFor();
      assert.equal(await page.title(), 'Latchkey');
      await assertAccessible(page, 'the home page, signed out');
      await screenshot(page, 'home-signed-out');

      await page.goto(link);
      await page.getByRole('heading', { name: 'Choose your password' }).waitFor();
      assert.equal(await page.title(), 'Choose your password · Latchkey');
      await assertAccessible(page, 'the set-password page');
      await screenshot(page, 'set-password');

      await page.getByLabel('New password', { exact: true }).fill('a new password for me');
      await page.getByLabel('New password again').fill('a different one');
      await page.getByRole('button', { name: 'Set password' }).click();
      assert.equal((await page.getByRole('alert').textContent())?.trim(), 'The two passwords do not match.');
      await page.getByLabel('New password', { exact: true }).fill('short');
      await page.getByLabel('New password again').fill('short');
      await page.getByRole('button', { name: 'Set password' }).click();
      assert.match((await page.getByRole('alert').textContent()) ?? '', /at least 8 characters/);
      await assertAccessible(page, 'the set-password page with an error');
      await screenshot(page, 'set-password-error');

      await page.getByLabel('New password', { exact: true }).fill('a new password for me');
      await page.getByLabel('New password again').fill('a new password for me');
      await page.getByRole('button', { name: 'Set password' }).click();
      await page.getByRole('heading', { name: 'Your password is set' }).waitFor();
      await assertAccessible(page, 'the password-set page');

      await page.getByRole('link', { name: 'Sign in' }).click();
      await signIn(page, 'new.person@example.com', 'a new password for me');
      await page.getByRole('heading', { name: 'Your account' }).waitFor();
      assert.ok(((await page.locator('main').textContent()) ?? '').includes('new.person@example.com'));
      await page.getByRole('link', { name: 'Connected apps' }).waitFor();
      await assertAccessible(page, 'the home page, signed in');
      await screenshot(page, 'home');

      await page.goto(link);
      await page.getByRole('heading', { name: 'This link no longer works' }).waitFor();
      await assertAccessible(page, 'the expired-link page');
      await screenshot(page, 'link-expired');
    });
  });

  it('lists an approved app on Connected apps, and Revoke ends its token at /introspect and brings the consent page back', async () => {
    const email = await addUser(server.stores, 'apps.person@example.com');
    const clientId = await registerClient('Claude');
    const first = authorization(clientId);
    const token = await withPage(async (page) => {
      await page.goto(first.url);
      await signIn(page, email);
      // A self-declared name is marked as such, with where the app returns.
      await page.getByRole('heading', { name: 'Allow Claude unverified to access your account?' }).waitFor();
      assert.match(
        (await page.getByRole('note').first().textContent()) ?? '',
        /chose the name “Claude” itself.*127\.0\.0\.1:33418/s,
      );
      await assertAccessible(page, 'the consent page of an unverified app');
      await screenshot(page, 'consent-unverified');
      await page.getByRole('button', { name: 'Allow' }).click();
      const code = (await landOnCallback(page)).get('code')!;
      const token = await accessToken(clientId, first.verifier, code);
      assert.equal((await introspect(server.url, rs, token)).active, true);

      // Remembered: the next request goes straight back to the app.
      const second = authorization(clientId);
      await page.goto(second.url);
      assert.ok((await landOnCallback(page)).get('code'));

      await page.goto(`${ISSUER}/apps`);
      await page.getByRole('heading', { name: 'Connected apps' }).waitFor();
      const entry = (await page.locator('.app').textContent()) ?? '';
      for (const shown of [
        'Claude',
        'unverified',
        '127.0.0.1:33418',
        'Team Notes',
        'Use the MCP server named above',
        '30 Nov 2026, 09:00 UTC',
      ]) {
        assert.ok(entry.includes(shown), `the entry shows ${shown}: ${entry}`);
      }
      await assertAccessible(page, 'the connected-apps page');
      await screenshot(page, 'connected-apps');
      await page.setViewportSize({ width: 390, height: 844 });
      assert.ok(
        await page.evaluate<boolean>(
          'document.documentElement.scrollWidth <= document.documentElement.clientWidth',
        ),
        'the connected-apps page fits a phone screen',
      );
      await screenshot(page, 'connected-apps-mobile');
      await page.setViewportSize({ width: 1280, height: 800 });

      await page.getByRole('button', { name: 'Revoke' }).click();
      await page.getByText('You have not connected any apps.').waitFor();
      assert.equal(new URL(page.url()).pathname, '/apps');
      await assertAccessible(page, 'the connected-apps page, empty');
      assert.deepEqual(await introspect(server.url, rs, token), { active: false });

      const third = authorization(clientId);
      await page.goto(third.url);
      await page.getByRole('heading', { name: /^Allow Claude/ }).waitFor();
      return token;
    });
    assert.deepEqual(await introspect(server.url, rs, token), { active: false });
  });

  it('changing the password needs the current one and signs the person out everywhere else', async () => {
    const email = await addUser(server.stores, 'two.browsers@example.com');
    const elsewhere = await browser.newContext(DESKTOP);
    try {
      const other = await elsewhere.newPage();
      await other.goto(`${ISSUER}/apps`);
      await signIn(other, email);
      await other.getByRole('heading', { name: 'Connected apps' }).waitFor();

      await withPage(async (page) => {
        await page.goto(`${ISSUER}/account/password`);
        await signIn(page, email);
        await page.getByRole('heading', { name: 'Change password' }).waitFor();
        await assertAccessible(page, 'the change-password page');
        await page.getByLabel('Current password').fill('not my password');
        await page.getByLabel('New password', { exact: true }).fill('my brand new password');
        await page.getByLabel('New password again').fill('my brand new password');
        await page.getByRole('button', { name: 'Change password' }).click();
        assert.equal(
          (await page.getByRole('alert').textContent())?.trim(),
          'Your current password is not correct.',
        );
        await assertAccessible(page, 'the change-password page with an error');
        await screenshot(page, 'change-password-error');

        await page.getByLabel('Current password').fill(TEST_PASSWORD);
        await page.getByLabel('New password', { exact: true }).fill('my brand new password');
        await page.getByLabel('New password again').fill('my brand new password');
        await page.getByRole('button', { name: 'Change password' }).click();
        await page.getByRole('heading', { name: 'Your password is changed' }).waitFor();
        await assertAccessible(page, 'the password-changed page');

        // This browser stays signed in; the other one was signed out.
        await page.goto(`${ISSUER}/apps`);
        await page.getByRole('heading', { name: 'Connected apps' }).waitFor();
      });
      await other.goto(`${ISSUER}/apps`);
      await other.getByRole('heading', { name: 'Sign in' }).waitFor();
      await signIn(other, email, TEST_PASSWORD);
      assert.equal((await other.getByRole('alert').textContent())?.trim(), 'Email or password is incorrect.');
      await signIn(other, email, 'my brand new password');
      await other.getByRole('heading', { name: 'Connected apps' }).waitFor();
    } finally {
      await elsewhere.close();
    }
  });

  it('shows sign-in, consent, the error, not-found and signed-out pages without serious accessibility violations, and has a favicon', async () => {
    const email = await addUser(server.stores, 'axe.person@example.com');
    const client = authorization(await registerClient('Notes Helper'));
    await withPage(async (page) => {
      await page.goto(client.url);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await assertAccessible(page, 'the sign-in page');
      await signIn(page, email, 'wrong password');
      await page.getByRole('alert').waitFor();
      await assertAccessible(page, 'the sign-in page with an error');
      await signIn(page, email);
      await page.getByRole('heading', { name: /^Allow Notes Helper/ }).waitFor();
      await assertAccessible(page, 'the consent page');
      await page.getByRole('button', { name: 'Not you? Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await assertAccessible(page, 'the sign-in page after signing out');
      await page.goto(`${ISSUER}/logout`);
      await assertAccessible(page, 'the signed-out page');
      await page.goto(authorization('no-such-client').url);
      await page.getByRole('heading', { name: 'This app is not recognised' }).waitFor();
      await assertAccessible(page, 'the error page');
      const missing = await page.goto(`${ISSUER}/no-such-page`);
      assert.equal(missing?.status(), 404);
      await page.getByRole('heading', { name: 'This page does not exist' }).waitFor();
      await assertAccessible(page, 'the not-found page');
      await screenshot(page, 'not-found');
    });
    for (const path of ['/favicon.ico', '/favicon.svg']) {
      const icon = await fetch(`${server.url}${path}`);
      assert.equal(icon.status, 200, path);
      assert.equal(icon.headers.get('content-type'), 'image/svg+xml');
      assert.match(await icon.text(), /^<svg /);
    }
  });

  it('keeps its contrast and structure in dark mode (axe-core on the pages with alerts, badges and forms)', async () => {
    const email = await addUser(server.stores, 'dark.person@example.com');
    const client = authorization(await registerClient('Night Owl'));
    await withPage(
      async (page) => {
        await page.goto(ISSUER);
        await assertAccessible(page, 'the home page in dark mode');
        await page.goto(client.url);
        await signIn(page, email, 'wrong password');
        await page.getByRole('alert').waitFor();
        await assertAccessible(page, 'the sign-in page with an error in dark mode');
        await signIn(page, email);
        await page.getByRole('heading', { name: /^Allow Night Owl/ }).waitFor();
        await assertAccessible(page, 'the consent page in dark mode');
        await page.getByRole('button', { name: 'Allow' }).click();
        await landOnCallback(page);
        await page.goto(`${ISSUER}/apps`);
        await page.getByRole('heading', { name: 'Connected apps' }).waitFor();
        await assertAccessible(page, 'the connected-apps page in dark mode');
        await page.goto(authorization('no-such-client').url);
        await assertAccessible(page, 'the error page in dark mode');
      },
      { colorScheme: 'dark' },
    );
  });

  // Last: it takes the database away for good (the server is closed after it).
  it('shows the 503 page of a database outage without serious accessibility violations', async () => {
    await server.database.db.close();
    await withPage(async (page) => {
      // An authorization request needs its client from the database.
      const answer = await page.goto(authorization('any-client').url);
      assert.equal(answer?.status(), 503);
      assert.ok(answer?.headers()['retry-after']);
      await page.getByRole('heading', { name: /unavailable/i }).waitFor();
      await assertAccessible(page, 'the 503 page');
      await screenshot(page, 'unavailable');
    });
  });
});
