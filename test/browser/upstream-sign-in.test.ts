// Issue 9 acceptance 3 (spec federation §11 B1): in headless Chromium, the sign-in page offers two upstream providers
// and the password form; a click on Plane goes to the Plane stand-in and back (a form POST whose 303 leaves for
// another origin: CSP form-action must allow it), and the consent page names the Plane sign-in and workspace. No
// Content Security Policy violation is reported on the way. Screenshot: docs/screenshots/sign-in-upstream.png.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { startFederated } from '../helpers/federation.ts';
import { GitHubStandin } from '../helpers/github-standin.ts';
import { PlaneStandin } from '../helpers/plane-standin.ts';
import { addClient, addResourceServer, addUser, type TestServer } from '../helpers/server.ts';
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
const PLANE_ORIGIN = 'http://localhost:4100';
const GITHUB_ORIGIN = 'http://localhost:4200';
const APP_ORIGIN = 'http://127.0.0.1:33418';
const REDIRECT_URI = `${APP_ORIGIN}/callback`;
const RESOURCE = 'https://mcp.example.com/mcp';
const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));

describe('B1: signing in through an upstream provider button in headless Chromium', () => {
  let server: TestServer;
  let plane: PlaneStandin;
  let gh: GitHubStandin;
  let callback: CallbackServer;
  let proxy: HostProxy;
  let browser: Browser;

  before(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    plane = await PlaneStandin.start({ redirectUris: [`${ISSUER}/login/upstream/plane/callback`] });
    gh = await GitHubStandin.start({ redirectUris: [`${ISSUER}/login/upstream/github/callback`] });
    server = await startFederated('pglite', {
      env: { ISSUER },
      providers: () => [
        {
          id: 'plane',
          type: 'plane',
          client_id: plane.clientId,
          client_secret: plane.clientSecret,
          // The browser sees the fixed origin; Latchkey calls the stand-in directly.
          base_url: PLANE_ORIGIN,
          internal_base_url: plane.baseUrl,
          create_users: true,
          allowed_workspaces: ['acme'],
        },
        {
          id: 'github',
          type: 'github',
          client_id: gh.clientId,
          client_secret: gh.clientSecret,
          base_url: GITHUB_ORIGIN,
          api_base_url: gh.url,
        },
      ],
    });
    await addUser(server.stores, 'ada@example.com');
    await addResourceServer(server.stores, RESOURCE, 'Team Notes');
    await server.database.db.prisma.resourceServer.update({
      where: { uri: RESOURCE },
      data: { upstreamTokenProviders: ['plane'] },
    });
    callback = await startCallbackServer(APP_ORIGIN);
    proxy = await startHostProxy({
      [new URL(ISSUER).host]: Number(new URL(server.url).port),
      [new URL(PLANE_ORIGIN).host]: Number(new URL(plane.baseUrl).port),
      [new URL(GITHUB_ORIGIN).host]: Number(new URL(gh.url).port),
      [new URL(APP_ORIGIN).host]: callback.port,
    });
    browser = await launchChromium(proxy);
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
    await callback?.close();
    await server?.close();
    await plane?.close();
    await gh?.close();
  });

  it('click Plane → the stand-in → back → consent names the Plane sign-in; no CSP violation', async () => {
    const person = plane.addUser({ email: 'grace@example.com', display_name: 'Grace Hopper' });
    plane.signedInAs = person.id;
    const client = await addClient(server.stores, { name: 'Notes Assistant', redirectUris: [REDIRECT_URI] });
    const verifier = randomBytes(32).toString('base64url');
    const url = new URL('/authorize', ISSUER);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: client.clientId,
      redirect_uri: REDIRECT_URI,
      scope: 'mcp',
      state: 'b1-state',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      resource: RESOURCE,
    }).toString();

    const context = await browser.newContext({
      colorScheme: 'light',
      viewport: { width: 1280, height: 800 },
    });
    const violations: string[] = [];
    try {
      const page = await context.newPage();
      const audit = new PageAudit(page, ISSUER);
      // Chromium reports a blocked form submission or redirect as a console error; the event covers the rest.
      page.on('console', (m) => {
        if (/Content Security Policy|securitypolicyviolation/i.test(m.text())) violations.push(m.text());
      });
      await page.addInitScript({
        content: `document.addEventListener('securitypolicyviolation', (e) => {
          console.error('securitypolicyviolation ' + e.violatedDirective + ' ' + e.blockedURI);
        });`,
      });
      await page.goto(url.href);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await page.getByLabel('Email').waitFor();
      await page.getByRole('button', { name: 'Sign in with Plane' }).waitFor();
      await page.getByRole('button', { name: 'Sign in with GitHub' }).waitFor();
      await page.getByRole('button', { name: 'Cancel' }).waitFor();
      await assertAccessible(page, 'the sign-in page with upstream providers');
      await page.screenshot({
        path: `${SCREENSHOTS}sign-in-upstream.png`,
        fullPage: true,
        animations: 'disabled',
      });

      await page.getByRole('button', { name: 'Sign in with Plane' }).click();
      await page.getByRole('heading', { name: 'Allow Notes Assistant to access your account?' }).waitFor();
      const consent = (await page.locator('main').textContent()) ?? '';
      assert.ok(consent.includes('Signed in with Plane as grace@example.com (workspace acme)'), consent);
      assert.ok(
        consent.includes('Team Notes will be able to use your Plane account on your behalf.'),
        consent,
      );
      await assertAccessible(page, 'the consent page after an upstream sign-in');
      await page.screenshot({
        path: `${SCREENSHOTS}consent-upstream.png`,
        fullPage: true,
        animations: 'disabled',
      });

      const authorize = plane.recorded('authorize');
      assert.equal(authorize.length, 1, 'the browser reached the Plane stand-in');
      assert.equal(authorize[0]?.headers.host, new URL(PLANE_ORIGIN).host);

      await page.getByRole('button', { name: 'Allow' }).click();
      await page.waitForURL((u) => u.href.startsWith(`${REDIRECT_URI}?`));
      const landed = new URL(page.url()).searchParams;
      assert.equal(landed.get('state'), 'b1-state');
      assert.ok(landed.get('code'));
      await audit.checkedPages();
    } finally {
      await context.close();
    }
    assert.deepEqual(violations, []);
  });
});
