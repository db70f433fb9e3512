// The consent page for Client ID Metadata Document clients, and what revoking one installation of such a client
// leaves alone. A CIMD client_id is a URL anyone can publish under, so the page names the host that published the
// document (CIMD draft, security considerations) and warns when the app can only receive access on this computer.
// One CIMD client_id is shared by every installation of an app (each Claude Code on its own ephemeral port), so a
// revocation must end one installation's grant and nothing else: not the others, not the person's sign-in.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PageResult } from '../helpers/browser.ts';
import { type FormBrowser, parseForms } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { authorizeUrl, exchangeCode, refreshToken, signedIn } from '../helpers/flow.ts';
import {
  addResourceServer,
  addUser,
  introspect,
  startServer,
  type TestClient,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';
import { generateCertificate, HttpsDocumentHost, loopbackLookup } from '../helpers/tls.ts';

const certificate = generateCertificate();
const documents = new HttpsDocumentHost(certificate, 'client.test');

before(() => documents.start());
after(() => documents.stop());

let documentCounter = 0;
/** Publishes a CIMD document with these redirect URIs at a fresh path and returns its URL (the client_id). */
function publishClient(name: string, redirectUris: string[]): string {
  return documents.publish(`/oauth/client-metadata-${++documentCounter}`, (clientId) => ({
    client_id: clientId,
    client_name: name,
    redirect_uris: redirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  }));
}

/** The host shown under "Published by" on a consent page, in bold, or undefined when there is none. */
function publishedHost(html: string): string | undefined {
  return /<dt>Published by<\/dt>\s*<dd><strong class="host">([^<]*)<\/strong><\/dd>/.exec(html)?.[1];
}

function hasLoopbackWarning(html: string): boolean {
  return /<p class="warning" role="note">[^<]*on this computer only/.test(html);
}

function isSignInPage(page: PageResult): boolean {
  return new URL(page.url).pathname === '/login' || parseForms(page.html).some((f) => f.action === '/login');
}

function isConsentPage(page: PageResult): boolean {
  return page.status === 200 && parseForms(page.html).some((f) => f.action === '/authorize');
}

forEachDatabase('consent for CIMD clients', (kind) => {
  let server: TestServer;
  let rs: TestResourceServer;
  let email: string;
  let browser: FormBrowser;

  before(async () => {
    server = await startServer(kind, {
      env: { CIMD_ALLOW_LOOPBACK: 'true', REGISTRATION_RATE_LIMIT: '1000' },
      cimd: { ca: certificate.cert, lookup: loopbackLookup(documents.hostname) },
    });
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    email = await addUser(server.stores);
    browser = await signedIn(server, email);
  });
  after(() => server.close());

  /** GET /authorize with prompt=consent as the signed-in person; asserts the consent page came back. */
  async function consentPage(client: TestClient): Promise<PageResult> {
    const page = await browser.request(authorizeUrl(server, client, { resource: rs.uri, prompt: 'consent' }));
    assert.equal(page.redirectedTo, undefined, `redirected to ${page.redirectedTo}`);
    assert.ok(isConsentPage(page), `not a consent page (${page.status}): ${page.html.slice(0, 300)}`);
    return page;
  }

  describe('the consent page', () => {
    it('shows the client_id host prominently and warns when every redirect URI is loopback (CIMD security considerations, RFC 8252 §8.3)', async () => {
      const clientId = publishClient('Claude Code', [
        'http://localhost/callback',
        'http://127.0.0.1/callback',
      ]);
      const page = await consentPage({
        clientId,
        clientSecret: undefined,
        redirectUri: 'http://127.0.0.1:54321/callback',
      });
      assert.equal(publishedHost(page.html), `client.test:${documents.port}`);
      assert.ok(hasLoopbackWarning(page.html), 'the loopback-only warning is shown');
      assert.match(page.html, /Claude Code/);
    });

    it('shows no loopback warning when one of the redirect URIs is https, whichever is used (CIMD security considerations)', async () => {
      const clientId = publishClient('Web and desktop app', [
        'https://app.example.com/oauth/callback',
        'http://127.0.0.1/callback',
      ]);
      for (const redirectUri of [
        'https://app.example.com/oauth/callback',
        'http://127.0.0.1:54321/callback',
      ]) {
        const page = await consentPage({ clientId, clientSecret: undefined, redirectUri });
        assert.equal(publishedHost(page.html), `client.test:${documents.port}`, redirectUri);
        assert.equal(hasLoopbackWarning(page.html), false, `no warning for ${redirectUri}`);
      }
    });

    it('shows no client_id host for a dynamically registered client (RFC 7591)', async () => {
      const res = await fetch(`${server.url}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          redirect_uris: ['https://app.example.com/cb'],
          client_name: 'Registered app',
        }),
      });
      assert.equal(res.status, 201);
      const { client_id: clientId } = (await res.json()) as { client_id: string };
      const page = await consentPage({
        clientId,
        clientSecret: undefined,
        redirectUri: 'https://app.example.com/cb',
      });
      assert.equal(publishedHost(page.html), undefined);
      assert.doesNotMatch(page.html, /Published by/);
      assert.doesNotMatch(page.html, /client\.test/);
      assert.equal(hasLoopbackWarning(page.html), false);
      assert.match(page.html, /Registered app/);
    });
  });

  describe('revoking one installation', () => {
    /** Runs the front channel for `client` in the signed-in browser, approving if asked; returns the code. */
    async function authorizeInstallation(client: TestClient, state: string): Promise<string> {
      let page = await browser.request(authorizeUrl(server, client, { resource: rs.uri, state }));
      assert.equal(isSignInPage(page), false, 'the person is still signed in');
      if (!page.redirectedTo) {
        assert.ok(isConsentPage(page), `not a consent page (${page.status}): ${page.html.slice(0, 300)}`);
        page = await browser.submit(page, '/authorize', {}, { name: 'decision', value: 'approve' });
      }
      assert.ok(page.redirectedTo, 'the authorization returned to the client');
      const callback = new URL(page.redirectedTo);
      assert.equal(`${callback.origin}${callback.pathname}`, client.redirectUri);
      assert.equal(callback.searchParams.get('state'), state);
      const code = callback.searchParams.get('code');
      assert.ok(code, `no code in ${callback.href}`);
      return code;
    }

    async function connect(client: TestClient, state: string): Promise<{ access: string; refresh: string }> {
      const code = await authorizeInstallation(client, state);
      const tokens = await exchangeCode(server, client, code, { resource: rs.uri });
      assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
      return { access: tokens.body.access_token as string, refresh: tokens.body.refresh_token as string };
    }

    it("ends only that installation's grant: another installation's tokens keep working and the person stays signed in (RFC 7009 §2.1)", async () => {
      const clientId = publishClient('Claude Code', [
        'http://localhost/callback',
        'http://127.0.0.1/callback',
      ]);
      const first: TestClient = {
        clientId,
        clientSecret: undefined,
        redirectUri: 'http://127.0.0.1:50001/callback',
      };
      const second: TestClient = {
        clientId,
        clientSecret: undefined,
        redirectUri: 'http://localhost:50002/callback',
      };

      const a = await connect(first, 'install-a');
      const b = await connect(second, 'install-b');
      const grants = await server.database.db.prisma.grant.findMany({
        where: { client: { clientId }, revokedAt: null },
        orderBy: { createdAt: 'asc' },
      });
      assert.deepEqual(
        grants.map((g) => g.redirectUri).sort(),
        [first.redirectUri, second.redirectUri].sort(),
        'two grants, one per installation',
      );

      const revoked = await fetch(`${server.url}/revoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token: a.refresh,
          token_type_hint: 'refresh_token',
          client_id: clientId,
        }),
      });
      assert.equal(revoked.status, 200);

      // The revoked installation is out: its access token is inactive and its refresh token is refused.
      assert.equal((await introspect(server.url, rs, a.access)).active, false);
      const refusedRefresh = await refreshToken(server, first, a.refresh);
      assert.equal(refusedRefresh.status, 400);
      assert.equal(refusedRefresh.body.error, 'invalid_grant');

      // The other installation is untouched.
      const other = await introspect(server.url, rs, b.access);
      assert.equal(other.active, true);
      assert.equal(other.client_id, clientId);
      const refreshed = await refreshToken(server, second, b.refresh, { resource: rs.uri });
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
      assert.equal((await introspect(server.url, rs, refreshed.body.access_token as string)).active, true);

      // The person is still signed in: the revoked installation can reconnect without a sign-in page.
      const again = await connect(first, 'install-a-again');
      assert.equal((await introspect(server.url, rs, again.access)).active, true);
    });
  });
});
