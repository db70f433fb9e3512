// /authorize: every error branch, where it is shown (Latchkey's page, never a redirect, until the client and
// redirect URI are known good — RFC 6749 §4.1.2.1), and remembered consent and prompt handling.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_STATE_BYTES } from '../../src/oauth/authorization-request.ts';
import { FormBrowser, parseForms } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { authorizeUrl, signedIn } from '../helpers/flow.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  startServer,
  TEST_PASSWORD,
  type TestClient,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';

forEachDatabase('/authorize', (kind) => {
  let server: TestServer;
  let client: TestClient;
  let rs: TestResourceServer;
  let email: string;
  let browser: FormBrowser;

  before(async () => {
    server = await startServer(kind);
    client = await addClient(server.stores, {
      redirectUris: ['https://app.example.com/callback', 'http://127.0.0.1/callback'],
    });
    rs = await addResourceServer(server.stores, 'https://mcp.example.com');
    email = await addUser(server.stores);
    browser = await signedIn(server, email);
  });
  after(() => server.close());

  async function errorPage(url: string, message: RegExp) {
    const page = await browser.request(url);
    assert.equal(page.redirectedTo, undefined, 'must not redirect to an unvalidated redirect URI');
    assert.equal(page.status, 400);
    assert.match(page.html, message);
  }

  async function redirectError(url: string, error: string, description?: RegExp) {
    const page = await browser.request(url);
    assert.ok(page.redirectedTo, `expected a redirect, got ${page.status}: ${page.html.slice(0, 200)}`);
    assert.equal(page.status, 302);
    const cb = new URL(page.redirectedTo);
    assert.equal(cb.searchParams.get('error'), error);
    assert.equal(cb.searchParams.get('state'), 'state-123');
    assert.equal(cb.searchParams.get('iss'), server.url, 'RFC 9207: iss on error responses too');
    if (description) assert.match(cb.searchParams.get('error_description') ?? '', description);
  }

  describe('before the client and redirect URI are validated, errors render a page and never redirect', () => {
    it('refuses a request without client_id', () =>
      errorPage(authorizeUrl(server, client, { client_id: undefined }), /client_id is required/));
    it('refuses an unknown client_id', () =>
      errorPage(authorizeUrl(server, client, { client_id: 'nope' }), /unknown client_id/));
    it('refuses a redirect_uri that is not registered', () =>
      errorPage(
        authorizeUrl(server, client, { redirect_uri: 'https://evil.example.com/callback' }),
        /not registered/,
      ));
    it('refuses a registered redirect_uri with a different port when not loopback (exact match)', () =>
      errorPage(
        authorizeUrl(server, client, { redirect_uri: 'https://app.example.com:8443/callback' }),
        /not registered/,
      ));
    it('refuses a redirect_uri with an extra query or path', () =>
      errorPage(
        authorizeUrl(server, client, { redirect_uri: 'https://app.example.com/callback/x' }),
        /not registered/,
      ));
    it('refuses a repeated redirect_uri', () =>
      errorPage(
        authorizeUrl(server, client, { redirect_uri: [client.redirectUri, client.redirectUri] }),
        /must not be repeated/,
      ));
    it('refuses a repeated client_id', () =>
      errorPage(
        authorizeUrl(server, client, { client_id: [client.clientId, client.clientId] }),
        /must not be repeated/,
      ));
    it('requires redirect_uri when several are registered', () =>
      errorPage(authorizeUrl(server, client, { redirect_uri: undefined }), /redirect_uri is required/));
  });

  describe('after validation, errors return to the client with error, state and iss', () => {
    it('refuses a missing response_type', () =>
      redirectError(authorizeUrl(server, client, { response_type: undefined }), 'invalid_request'));
    it('refuses response_type=token', () =>
      redirectError(authorizeUrl(server, client, { response_type: 'token' }), 'unsupported_response_type'));
    it('requires code_challenge (PKCE is mandatory)', () =>
      redirectError(
        authorizeUrl(server, client, { code_challenge: undefined }),
        'invalid_request',
        /code_challenge is required/,
      ));
    it('refuses code_challenge_method=plain', () =>
      redirectError(
        authorizeUrl(server, client, { code_challenge_method: 'plain' }),
        'invalid_request',
        /S256/,
      ));
    it('refuses a missing code_challenge_method', () =>
      redirectError(
        authorizeUrl(server, client, { code_challenge_method: undefined }),
        'invalid_request',
        /S256/,
      ));
    it('refuses a malformed code_challenge', () =>
      redirectError(
        authorizeUrl(server, client, { code_challenge: 'short' }),
        'invalid_request',
        /malformed/,
      ));
    it('refuses an unsupported scope', () =>
      redirectError(authorizeUrl(server, client, { scope: 'mcp admin' }), 'invalid_scope', /admin/));
    it('refuses an unknown resource (RFC 8707)', () =>
      redirectError(
        authorizeUrl(server, client, { resource: 'https://other.example.com/mcp' }),
        'invalid_target',
      ));
    it('refuses a resource with a fragment', () =>
      redirectError(
        authorizeUrl(server, client, { resource: 'https://mcp.example.com/#x' }),
        'invalid_target',
      ));
    it('refuses two resources', () =>
      redirectError(
        authorizeUrl(server, client, { resource: [rs.uri, 'https://other.example.com'] }),
        'invalid_target',
      ));
    it('refuses a repeated state or scope', async () => {
      await redirectError(
        authorizeUrl(server, client, { scope: ['mcp', 'mcp'] }),
        'invalid_request',
        /scope must not be repeated/,
      );
    });
    it('refuses an unknown prompt value', () =>
      redirectError(authorizeUrl(server, client, { prompt: 'sideways' }), 'invalid_request'));
  });

  describe('a state is sent back only when every client can read the answer', () => {
    // 682 × 'é' is 4,092 bytes form-encoded (6 each); four more ASCII characters reach MAX_STATE_BYTES exactly.
    const longest = `${'é'.repeat(682)}abcd`;
    const tooLong = `${longest}e`;

    it('round-trips the longest state, encoded, in an error answer and after approval', async () => {
      assert.equal(new URLSearchParams({ s: longest }).toString().length - 2, MAX_STATE_BYTES);
      const refused = await browser.request(authorizeUrl(server, client, { state: longest, scope: 'nope' }));
      assert.equal(refused.status, 302);
      assert.equal(new URL(refused.redirectedTo!).searchParams.get('state'), longest);
      const c = await addClient(server.stores, { name: 'Long state' });
      const page = await browser.request(authorizeUrl(server, c, { state: longest }));
      const approved = await browser.submit(page, '/authorize', {}, { name: 'decision', value: 'approve' });
      assert.equal(approved.status, 303);
      const cb = new URL(approved.redirectedTo!);
      assert.ok(cb.searchParams.get('code'));
      assert.equal(cb.searchParams.get('state'), longest);
    });

    it('shows a page, never a redirect, for a longer state on GET and on the consent POST', async () => {
      await errorPage(authorizeUrl(server, client, { state: tooLong }), /state is too long/);
      // Found by the fuzz test: 3,000 × 'é' is 18,000 bytes once encoded, more than a client's header limit.
      for (const state of [tooLong, 'é'.repeat(3000)]) {
        for (const who of [browser, new FormBrowser(server.url)]) {
          const body = new URLSearchParams(new URL(authorizeUrl(server, client, { state })).searchParams);
          body.set('decision', 'approve');
          const res = await who.request('/authorize', { method: 'POST', body });
          assert.equal(res.redirectedTo, undefined);
          assert.equal(res.status, 400);
          assert.match(res.html, /state is too long/);
        }
      }
    });

    it('quotes at most 64 characters of an unsupported scope or prompt value in error_description', async () => {
      for (const params of [{ scope: `mcp ${'x'.repeat(4000)}` }, { prompt: 'é'.repeat(2000) }]) {
        const page = await browser.request(authorizeUrl(server, client, params));
        const description = new URL(page.redirectedTo!).searchParams.get('error_description') ?? '';
        assert.ok(description.length < 100, description);
        assert.match(description, /(x|é){64}…$/);
      }
    });
  });

  describe('successful responses', () => {
    it('redirects with 302, code, state and iss after a GET', async () => {
      const fresh = await signedIn(server, email);
      const consent = await fresh.request(authorizeUrl(server, client, { resource: rs.uri }));
      assert.equal(consent.status, 200);
      const approved = await fresh.submit(consent, '/authorize', {}, { name: 'decision', value: 'approve' });
      assert.equal(approved.status, 303, 'a form POST is answered with 303 so the browser GETs the client');
      const again = await fresh.request(authorizeUrl(server, client, { resource: rs.uri }));
      assert.equal(again.status, 302);
      const cb = new URL(again.redirectedTo!);
      assert.ok(cb.searchParams.get('code'));
      assert.equal(cb.searchParams.get('state'), 'state-123');
      assert.equal(cb.searchParams.get('iss'), server.url);
    });

    it('ignores the port of a loopback redirect URI (RFC 8252 §7.3)', async () => {
      const page = await browser.request(
        authorizeUrl(server, client, { redirect_uri: 'http://127.0.0.1:54321/callback', prompt: 'none' }),
      );
      assert.ok(page.redirectedTo?.startsWith('http://127.0.0.1:54321/callback?'), page.redirectedTo);
    });

    it('treats a host-only resource with and without a trailing slash as the same (RFC 8707)', async () => {
      const c = await addClient(server.stores, { name: 'Slash' });
      for (const resource of [
        'https://mcp.example.com',
        'https://mcp.example.com/',
        'HTTPS://MCP.EXAMPLE.COM:443/',
      ]) {
        const page = await browser.request(authorizeUrl(server, c, { resource, prompt: 'none' }));
        assert.ok(page.redirectedTo, `no redirect for ${resource}`);
        assert.equal(new URL(page.redirectedTo).searchParams.get('error'), 'consent_required', resource);
      }
    });

    it('binds to the only resource server when resource is omitted', async () => {
      const c = await addClient(server.stores, { name: 'Unbound' });
      const page = await browser.request(authorizeUrl(server, c, { prompt: 'none' }));
      assert.equal(new URL(page.redirectedTo!).searchParams.get('error'), 'consent_required');
      const consent = await browser.request(authorizeUrl(server, c));
      assert.match(consent.html, /https:\/\/mcp\.example\.com/);
    });

    it('refuses an omitted resource when several resource servers are registered', async () => {
      const s2 = await startServer(kind);
      try {
        const c = await addClient(s2.stores);
        await addResourceServer(s2.stores, 'https://one.example.com/mcp');
        await addResourceServer(s2.stores, 'https://two.example.com/mcp');
        const b = await signedIn(s2, await addUser(s2.stores));
        const page = await b.request(authorizeUrl(s2, c));
        const cb = new URL(page.redirectedTo!);
        assert.equal(cb.searchParams.get('error'), 'invalid_target');
      } finally {
        await s2.close();
      }
    });

    it('refuses every request when no resource server is registered', async () => {
      const s2 = await startServer(kind);
      try {
        const c = await addClient(s2.stores);
        const b = await signedIn(s2, await addUser(s2.stores));
        const page = await b.request(authorizeUrl(s2, c));
        assert.equal(new URL(page.redirectedTo!).searchParams.get('error'), 'invalid_target');
      } finally {
        await s2.close();
      }
    });
  });

  describe('sign-in, consent and prompt', () => {
    it('sends a signed-out person to the sign-in page and back to the same request', async () => {
      const anonymous = new FormBrowser(server.url);
      const c = await addClient(server.stores, { name: 'After sign-in' });
      const res = await fetch(authorizeUrl(server, c, { resource: rs.uri }), { redirect: 'manual' });
      assert.equal(res.status, 302);
      const location = new URL(res.headers.get('location')!, server.url);
      assert.equal(location.pathname, '/login');
      assert.match(location.searchParams.get('return_to') ?? '', /^\/authorize\?/);
      const page = await anonymous.request(location.href);
      const afterLogin = await anonymous.submit(page, '/login', { email, password: TEST_PASSWORD });
      assert.ok(
        parseForms(afterLogin.html).some((f) => f.action === '/authorize'),
        'the consent page follows sign-in',
      );
    });

    it('answers prompt=none with login_required when nobody is signed in', async () => {
      const anonymous = new FormBrowser(server.url);
      const page = await anonymous.request(authorizeUrl(server, client, { prompt: 'none' }));
      assert.equal(new URL(page.redirectedTo!).searchParams.get('error'), 'login_required');
      assert.equal(new URL(page.redirectedTo!).searchParams.get('iss'), server.url);
    });

    it('answers prompt=none with consent_required before any approval', async () => {
      const other = await addClient(server.stores, { name: 'Never approved' });
      const page = await browser.request(authorizeUrl(server, other, { prompt: 'none' }));
      assert.equal(new URL(page.redirectedTo!).searchParams.get('error'), 'consent_required');
    });

    it('remembers an approval per user, client, resource and scopes, and skips the page for the same or fewer scopes', async () => {
      const s2 = await startServer(kind, { env: { SCOPES: 'mcp files' } });
      try {
        const c = await addClient(s2.stores);
        await addResourceServer(s2.stores, 'https://mcp.example.com');
        const who = await addUser(s2.stores);
        const b = await signedIn(s2, who);
        const consent = await b.request(authorizeUrl(s2, c, { scope: 'mcp files' }));
        assert.ok(parseForms(consent.html).some((f) => f.action === '/authorize'));
        const approved = await b.submit(consent, '/authorize', {}, { name: 'decision', value: 'approve' });
        assert.ok(new URL(approved.redirectedTo!).searchParams.get('code'));

        for (const scope of ['mcp files', 'mcp', 'files']) {
          const direct = await b.request(authorizeUrl(s2, c, { scope }));
          assert.ok(direct.redirectedTo, `scope "${scope}" should not ask again`);
          assert.ok(new URL(direct.redirectedTo).searchParams.get('code'));
        }
        const forced = await b.request(authorizeUrl(s2, c, { scope: 'mcp', prompt: 'consent' }));
        assert.equal(forced.redirectedTo, undefined, 'prompt=consent shows the page again');
        assert.ok(parseForms(forced.html).some((f) => f.action === '/authorize'));

        const otherUser = await signedIn(s2, await addUser(s2.stores));
        const notShared = await otherUser.request(authorizeUrl(s2, c, { scope: 'mcp' }));
        assert.equal(notShared.redirectedTo, undefined, 'another user is asked for their own approval');
      } finally {
        await s2.close();
      }
    });

    it('asks again when more scopes are requested than were approved', async () => {
      const s2 = await startServer(kind, { env: { SCOPES: 'mcp files' } });
      try {
        const c = await addClient(s2.stores);
        await addResourceServer(s2.stores, 'https://mcp.example.com');
        const b = await signedIn(s2, await addUser(s2.stores));
        const consent = await b.request(authorizeUrl(s2, c, { scope: 'mcp' }));
        await b.submit(consent, '/authorize', {}, { name: 'decision', value: 'approve' });
        const wider = await b.request(authorizeUrl(s2, c, { scope: 'mcp files' }));
        assert.equal(wider.redirectedTo, undefined);
        assert.ok(parseForms(wider.html).some((f) => f.action === '/authorize'));
      } finally {
        await s2.close();
      }
    });

    it('returns access_denied with state and iss when the person denies', async () => {
      const c = await addClient(server.stores, { name: 'Denied app' });
      const page = await browser.request(authorizeUrl(server, c));
      const denied = await browser.submit(page, '/authorize', {}, { name: 'decision', value: 'deny' });
      assert.equal(denied.status, 303);
      const cb = new URL(denied.redirectedTo!);
      assert.equal(cb.searchParams.get('error'), 'access_denied');
      assert.equal(cb.searchParams.get('state'), 'state-123');
      assert.equal(cb.searchParams.get('iss'), server.url);
      assert.equal(cb.searchParams.get('code'), null);
    });

    it('refuses a consent POST without the CSRF token, or with a wrong one, and issues no code', async () => {
      const c = await addClient(server.stores, { name: 'CSRF target' });
      const page = await browser.request(authorizeUrl(server, c));
      for (const token of ['', 'forged']) {
        const res = await browser.submit(
          page,
          '/authorize',
          { csrf_token: token },
          { name: 'decision', value: 'approve' },
        );
        assert.equal(res.status, 403);
        assert.equal(res.redirectedTo, undefined);
      }
      // A forged cross-site POST carrying the victim's cookie but not the token (SameSite aside) is refused too.
      const forged = await browser.request('/authorize', {
        method: 'POST',
        body: new URLSearchParams({
          ...Object.fromEntries(new URL(authorizeUrl(server, c)).searchParams),
          decision: 'approve',
        }),
      });
      assert.equal(forged.status, 403);
    });

    it('keeps the consent form valid across a reload and a duplicate GET', async () => {
      const c = await addClient(server.stores, { name: 'Reloaded' });
      const first = await browser.request(authorizeUrl(server, c));
      await browser.request(authorizeUrl(server, c));
      await browser.request(authorizeUrl(server, c));
      const approved = await browser.submit(first, '/authorize', {}, { name: 'decision', value: 'approve' });
      assert.ok(new URL(approved.redirectedTo!).searchParams.get('code'));
    });

    it('serves its pages unframeable, uncached and without script', async () => {
      const c = await addClient(server.stores, { name: 'Headers' });
      const page = await browser.request(authorizeUrl(server, c));
      assert.equal(page.headers.get('x-frame-options'), 'DENY');
      assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
      assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
      assert.equal(page.headers.get('cache-control'), 'no-store');
      assert.doesNotMatch(page.html, /<script/i);
    });

    it('shows the client name, the redirect host, the resource and scope descriptions on the consent page', async () => {
      const c = await addClient(server.stores, {
        name: 'Shown <b>Name</b>',
        redirectUris: ['https://shown.example.net/cb'],
      });
      const page = await browser.request(authorizeUrl(server, c));
      assert.match(page.html, /Shown &lt;b&gt;Name&lt;\/b&gt;/, 'the client name is escaped');
      assert.match(page.html, /shown\.example\.net/);
      assert.match(page.html, /https:\/\/mcp\.example\.com/);
      assert.match(page.html, /Use the MCP server named above/);
      assert.match(page.html, new RegExp(email.replace(/[.]/g, '\\.')));
    });
  });
});
