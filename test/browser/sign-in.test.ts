// A person's sign-in and consent in real headless Chromium (Debian's, driven by playwright-core): the pages work
// with JavaScript off and from the keyboard, show who asks for what, survive a reload, refuse framing and carry no
// script. Each run rewrites the screenshots under docs/screenshots/ (committed) at 1280×800 and at 390×844.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, BrowserContextOptions, Locator, Page } from 'playwright-core';
import {
  addClient,
  addResourceServer,
  addUser,
  introspect,
  startServer,
  TEST_PASSWORD,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';
import {
  type CallbackServer,
  type HostProxy,
  launchChromium,
  PageAudit,
  startCallbackServer,
  startHostProxy,
} from './harness.ts';

// Fixed origins the browser sees (the proxy maps them to the real ports), so the screenshots are stable.
const ISSUER = 'http://localhost:3000';
const APP_ORIGIN = 'http://127.0.0.1:33418';
const REDIRECT_URI = `${APP_ORIGIN}/callback`;
const RESOURCE = 'https://mcp.example.com/mcp';
const CLIENT_NAME = 'Notes Assistant';
const EMAIL = 'ada@example.com';
const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));

const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 } };
const MOBILE: BrowserContextOptions = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
};

interface AuthorizationAttempt {
  url: string;
  clientId: string;
  state: string;
  verifier: string;
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true, animations: 'disabled' });
}

async function isFocused(locator: Locator): Promise<boolean> {
  return locator.evaluate((el) => el === el.ownerDocument.activeElement);
}

describe('a person signs in and approves in headless Chromium', () => {
  let server: TestServer;
  let rs: TestResourceServer;
  let callback: CallbackServer;
  let proxy: HostProxy;
  let browser: Browser;

  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    server = await startServer('pglite', { env: { ISSUER } });
    await addUser(server.stores, EMAIL);
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

  /** A new client (so no earlier approval is remembered) and an authorization URL for it, with PKCE S256. */
  async function newAuthorization(clientId?: string): Promise<AuthorizationAttempt> {
    const id =
      clientId ??
      (await addClient(server.stores, { name: CLIENT_NAME, redirectUris: [REDIRECT_URI] })).clientId;
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(16).toString('base64url');
    const url = new URL('/authorize', ISSUER);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: id,
      redirect_uri: REDIRECT_URI,
      scope: 'mcp',
      state,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      resource: RESOURCE,
    }).toString();
    return { url: url.href, clientId: id, state, verifier };
  }

  async function withPage<T>(
    options: BrowserContextOptions,
    fn: (page: Page, audit: PageAudit) => Promise<T>,
  ): Promise<T> {
    const context: BrowserContext = await browser.newContext({ colorScheme: 'light', ...options });
    try {
      const page = await context.newPage();
      const audit = new PageAudit(page, ISSUER);
      const result = await fn(page, audit);
      await audit.checkedPages();
      return result;
    } finally {
      await context.close();
    }
  }

  async function expectSignInPage(page: Page): Promise<void> {
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/login');
  }

  async function signIn(page: Page, password = TEST_PASSWORD): Promise<void> {
    await page.getByLabel('Email').fill(EMAIL);
    await page.getByLabel('Password').fill(password);
    await page.getByLabel('Password').press('Enter');
  }

  async function expectConsentPage(page: Page): Promise<void> {
    await page.getByRole('heading', { name: `Allow ${CLIENT_NAME} to access your account?` }).waitFor();
  }

  /** Waits for the browser to land on the client's redirect URI and returns the query it carried. */
  async function landOnCallback(page: Page): Promise<URLSearchParams> {
    await page.waitForURL((u) => u.href.startsWith(`${REDIRECT_URI}?`));
    assert.equal(await page.locator('body').textContent(), 'done');
    const landed = new URL(page.url());
    assert.equal(callback.received.at(-1)?.href, landed.href);
    return landed.searchParams;
  }

  async function exchangeCode(attempt: AuthorizationAttempt, code: string): Promise<void> {
    const res = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT_URI,
        client_id: attempt.clientId,
        code_verifier: attempt.verifier,
        resource: RESOURCE,
      }),
    });
    assert.equal(res.status, 200);
    const tokens = (await res.json()) as Record<string, unknown>;
    assert.equal(tokens.token_type, 'Bearer');
    assert.equal(tokens.scope, 'mcp');
    const introspected = await introspect(server.url, rs, String(tokens.access_token));
    assert.equal(introspected.active, true);
    assert.equal(introspected.username, EMAIL);
    assert.equal(introspected.aud, RESOURCE);
  }

  it('signs in, shows who asks for what, and returns a code that the app exchanges, with JavaScript off (RFC 6749 §4.1; RFC 9207)', async () => {
    const attempt = await newAuthorization();
    await withPage({ ...DESKTOP, javaScriptEnabled: false }, async (page, audit) => {
      await page.goto(attempt.url);
      await expectSignInPage(page);
      await page.getByText(`to continue to ${CLIENT_NAME}`).waitFor();
      await screenshot(page, 'sign-in');

      await signIn(page);
      await expectConsentPage(page);
      const consent = (await page.locator('main').textContent()) ?? '';
      for (const shown of [
        CLIENT_NAME,
        '127.0.0.1:33418', // the redirect URI's host
        EMAIL,
        'Team Notes',
        RESOURCE,
        'Use the MCP server named above, as you', // the human description of `mcp`
      ]) {
        assert.ok(consent.includes(shown), `the consent page shows ${shown}`);
      }
      await screenshot(page, 'consent');

      await page.getByRole('button', { name: 'Allow' }).click();
      const response = await landOnCallback(page);
      assert.equal(response.get('state'), attempt.state);
      assert.equal(response.get('iss'), ISSUER);
      assert.ok(response.get('code'));
      await exchangeCode(attempt, response.get('code')!);

      const paths = (await audit.checkedPages()).map((p) => new URL(p.url).pathname);
      assert.deepEqual(paths, ['/login', '/authorize']);
    });
  });

  it('shows a wrong password as an alert, keeps the typed email, puts the cursor in the password field, and then signs in', async () => {
    const attempt = await newAuthorization();
    await withPage(DESKTOP, async (page) => {
      await page.goto(attempt.url);
      await signIn(page, 'not the password');
      const alert = page.getByRole('alert');
      assert.equal((await alert.textContent())?.trim(), 'Email or password is incorrect.');
      assert.equal(await page.getByLabel('Email').inputValue(), EMAIL);
      assert.equal(await page.getByLabel('Password').inputValue(), '');
      assert.ok(await isFocused(page.getByLabel('Password')), 'the password field has focus');
      const alertId = await alert.getAttribute('id');
      assert.equal(await page.getByLabel('Email').getAttribute('aria-describedby'), alertId);
      assert.equal(await page.getByLabel('Password').getAttribute('aria-describedby'), alertId);
      await screenshot(page, 'sign-in-error');

      await page.getByLabel('Password').fill(TEST_PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await expectConsentPage(page);
    });
  });

  it('sends the person back with error=access_denied, state and iss when they press Deny (RFC 6749 §4.1.2.1)', async () => {
    const attempt = await newAuthorization();
    await withPage(DESKTOP, async (page) => {
      await page.goto(attempt.url);
      await signIn(page);
      await expectConsentPage(page);
      await page.getByRole('button', { name: 'Deny' }).click();
      const response = await landOnCallback(page);
      assert.equal(response.get('error'), 'access_denied');
      assert.equal(response.get('state'), attempt.state);
      assert.equal(response.get('iss'), ISSUER);
      assert.equal(response.get('code'), null);
    });
  });

  it('accepts an approval after the consent page is reloaded (CSRF protection survives a reload)', async () => {
    const attempt = await newAuthorization();
    await withPage(DESKTOP, async (page) => {
      await page.goto(attempt.url);
      await signIn(page);
      await expectConsentPage(page);
      await page.reload();
      await expectConsentPage(page);
      await page.getByRole('button', { name: 'Allow' }).click();
      const response = await landOnCallback(page);
      assert.equal(response.get('state'), attempt.state);
      await exchangeCode(attempt, response.get('code')!);
    });
  });

  it('can be used with the keyboard alone: Tab goes email, password, Sign in, then Allow, Deny, Sign out', async () => {
    const attempt = await newAuthorization();
    await withPage(DESKTOP, async (page) => {
      await page.goto(attempt.url);
      const email = page.getByLabel('Email');
      const password = page.getByLabel('Password');
      assert.ok(await isFocused(email), 'the email field has focus when the page opens');

      // Start the tab sequence at the heading, as after reading the page from the top.
      await page.getByRole('heading', { name: 'Sign in' }).click();
      for (const stop of [email, password, page.getByRole('button', { name: 'Sign in' })]) {
        await page.keyboard.press('Tab');
        assert.ok(await isFocused(stop), `Tab reaches ${await stop.evaluate((el) => el.outerHTML)}`);
      }
      await page.keyboard.press('Shift+Tab');
      await page.keyboard.press('Shift+Tab');
      assert.ok(await isFocused(email), 'Shift+Tab goes back to the email field');
      await page.keyboard.type(EMAIL);
      await page.keyboard.press('Tab');
      await page.keyboard.type(TEST_PASSWORD);
      await page.keyboard.press('Tab');
      await page.keyboard.press('Enter');
      await expectConsentPage(page);

      await page.getByRole('heading', { name: /^Allow / }).click();
      const stops = [
        page.getByRole('button', { name: 'Allow' }),
        page.getByRole('button', { name: 'Deny' }),
        page.getByRole('button', { name: 'Not you? Sign out' }),
      ];
      for (const stop of stops) {
        await page.keyboard.press('Tab');
        assert.ok(await isFocused(stop), `Tab reaches ${await stop.textContent()}`);
      }
      await page.keyboard.press('Shift+Tab');
      await page.keyboard.press('Shift+Tab');
      assert.ok(await isFocused(stops[0]!));
      await page.keyboard.press('Enter');
      assert.ok((await landOnCallback(page)).get('code'));
    });
  });

  it('shows its own error page for an unknown client_id and never redirects (RFC 6749 §4.1.2.1)', async () => {
    const attempt = await newAuthorization('no-such-client');
    const callbacks = callback.received.length;
    await withPage(DESKTOP, async (page, audit) => {
      const response = await page.goto(attempt.url);
      assert.equal(response?.status(), 400);
      await page.getByRole('heading', { name: 'This app is not recognised' }).waitFor();
      assert.ok((await page.getByRole('alert').textContent())?.trim());
      // The protocol's words stay on the page, small, for support.
      assert.match(
        (await page.locator('.support').textContent()) ?? '',
        /invalid_request\s+unknown client_id/,
      );
      assert.equal(new URL(page.url()).pathname, '/authorize');
      await screenshot(page, 'error');
      assert.equal((await audit.checkedPages()).length, 1);
    });
    assert.equal(callback.received.length, callbacks);
  });

  it('signs out from the consent page ("Not you?") and goes back to sign-in for the same request', async () => {
    const attempt = await newAuthorization();
    const other = await addUser(server.stores, 'grace@example.com');
    await withPage(DESKTOP, async (page) => {
      await page.goto(attempt.url);
      await signIn(page);
      await expectConsentPage(page);
      await page.getByRole('button', { name: 'Not you? Sign out' }).click();
      await expectSignInPage(page);
      await page.getByRole('status').getByText('You are signed out.').waitFor();
      await page.getByText(`to continue to ${CLIENT_NAME}`).waitFor();
      await screenshot(page, 'signed-out');
      // The same request, kept whole: signing in as someone else carries on with it.
      const returnTo = new URL(new URL(page.url()).searchParams.get('return_to')!, ISSUER);
      assert.equal(returnTo.pathname, '/authorize');
      assert.deepEqual([...returnTo.searchParams].sort(), [...new URL(attempt.url).searchParams].sort());
      await page.getByLabel('Email').fill(other);
      await page.getByLabel('Password').fill(TEST_PASSWORD);
      await page.getByLabel('Password').press('Enter');
      await expectConsentPage(page);
      assert.ok(((await page.locator('main').textContent()) ?? '').includes(other));
      await page.getByRole('button', { name: 'Allow' }).click();
      const response = await landOnCallback(page);
      assert.equal(response.get('state'), attempt.state);
      assert.ok(response.get('code'));
    });
  });

  it('fits a 390px-wide phone screen without sideways scrolling', async () => {
    const attempt = await newAuthorization();
    await withPage(MOBILE, async (page) => {
      // A string, because the tests compile without the DOM library.
      const fitsWidth = () =>
        page.evaluate<boolean>(
          'document.documentElement.scrollWidth <= document.documentElement.clientWidth',
        );
      await page.goto(attempt.url);
      await expectSignInPage(page);
      assert.ok(await fitsWidth(), 'the sign-in page fits');
      await screenshot(page, 'sign-in-mobile');
      await signIn(page);
      await expectConsentPage(page);
      assert.ok(await fitsWidth(), 'the consent page fits');
      await screenshot(page, 'consent-mobile');
    });
  });
});
