// Sign-in through a real OpenID Provider (oidc-provider, started here): spec federation §11 O1–O10.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { hashSecret } from '../../src/lib/crypto.ts';
import { parseUpstreamTokenKeys } from '../../src/upstream/config.ts';
import { upstreamCipher } from '../../src/upstream/crypto.ts';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import {
  alertOf,
  approve,
  callbackUri,
  openAuthorize,
  pressProvider,
  randomId,
  startFederated,
  TEST_KEY_K1,
} from '../helpers/federation.ts';
import { authorizeUrl, exchangeCode } from '../helpers/flow.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  freePort,
  introspect,
  type TestClient,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';
import { startUpstreamOidc, type UpstreamOidc } from '../helpers/upstream-oidc.ts';

forEachDatabase('upstream OIDC sign-in', (kind) => {
  let op: UpstreamOidc;
  let server: TestServer;
  let rs: TestResourceServer;
  let client: TestClient;

  before(async () => {
    const port = await freePort();
    const deadIssuer = `http://127.0.0.1:${await freePort()}`;
    const issuer = `http://127.0.0.1:${port}`;
    op = await startUpstreamOidc({
      redirectUris: ['corp', 'other', 'goog'].map((id) => callbackUri(issuer, id)),
    });
    server = await startFederated(kind, {
      port,
      providers: () => [
        {
          id: 'corp',
          type: 'oidc',
          name: 'Corp SSO',
          issuer: op.issuer,
          client_id: op.clientId,
          client_secret: op.clientSecret,
          create_users: true,
          allow_anyone: true,
        },
        {
          id: 'other',
          type: 'oidc',
          name: 'Other SSO',
          issuer: op.issuer,
          client_id: op.clientId,
          client_secret: op.clientSecret,
        },
        // The Google preset pointed at this provider: it sends no `hd`, so a hosted domain refuses everyone.
        {
          id: 'goog',
          type: 'google',
          issuer: op.issuer,
          client_id: op.clientId,
          client_secret: op.clientSecret,
          hosted_domain: 'corp.example',
          create_users: true,
        },
        // Never reachable: its metadata is never fetched.
        {
          id: 'dead',
          type: 'oidc',
          name: 'Dead SSO',
          issuer: deadIssuer,
          client_id: 'x',
          client_secret: 'y',
        },
      ],
    });
    rs = await addResourceServer(server.stores, `${server.url}/mcp-${randomId()}`);
    client = await addClient(server.stores);
  });
  after(async () => {
    await server?.close();
    await op?.close();
  });

  function person(): string {
    const sub = `p-${randomId()}`;
    op.accounts.set(sub, { email: `${sub}@Corp.example`, email_verified: true, name: `Person ${sub}` });
    return sub;
  }

  /** Up to the callback: returns the browser and the callback URL the upstream sent it to (not followed). */
  async function toCallback(sub: string, provider = 'corp') {
    const browser = new FormBrowser(server.url, { follow: [op.issuer] });
    const login = await openAuthorize(server, browser, client, { resource: rs.uri });
    const started = await pressProvider(browser, login, provider);
    // Stop at the callback: do not follow Latchkey's own origin from the upstream.
    const upstreamOnly = new FormBrowser('http://127.0.0.1:9', { follow: [op.issuer] });
    for (const [origin, jar] of browser.jars) upstreamOnly.jars.set(origin, jar);
    const back = await op.signIn(upstreamOnly, started, sub);
    assert.ok(
      back.redirectedTo?.startsWith(callbackUri(server.url, provider)),
      `back at ${back.redirectedTo}`,
    );
    return { browser, callback: back.redirectedTo! };
  }

  test('O1: MCP client → /authorize → Corp SSO → consent → code → token → introspect', async () => {
    const sub = person();
    const browser = new FormBrowser(server.url, { follow: [op.issuer] });
    const login = await openAuthorize(server, browser, client, { resource: rs.uri });
    assert.match(login.html, /Sign in with Corp SSO/);
    const csp = login.headers.get('content-security-policy') ?? '';
    assert.match(csp, new RegExp(`form-action 'self'[^;]*${op.issuer.replace(/[.:/]/g, '\\$&')}`));
    const started = await pressProvider(browser, login, 'corp');
    const consent = await op.signIn(browser, started, sub);
    assert.match(consent.html, /Signed in with Corp SSO as p-[0-9a-f]+@corp\.example/);
    const back = await approve(browser, consent);
    const code = back.searchParams.get('code');
    assert.ok(code);
    const tokens = await exchangeCode(server, client, code);
    assert.equal(tokens.status, 200);
    const info = await introspect(server.url, rs, tokens.body.access_token as string);
    assert.equal(info.active, true);
    const user = await server.stores.users.findByEmail(`${sub}@corp.example`);
    assert.ok(user);
    assert.equal(info.sub, user.id);
    const auth = op.requests.filter((r) => r.path === '/auth').at(-1)!;
    assert.equal(auth.query.code_challenge_method, 'S256');
    assert.ok(auth.query.nonce && auth.query.nonce.length >= 43);
    assert.equal(auth.query.redirect_uri, `${server.url}/login/upstream/corp/callback`);
    const grant = (await server.stores.grants.listGrants({ userId: user.id }))[0]!;
    assert.ok(grant.upstreamLoginId, 'the grant records the upstream login');
  });

  test('O2: email only in userinfo: the user is created with it, email_verified from userinfo', async () => {
    const sub = `p-${randomId()}`;
    op.accounts.set(sub, { email: `${sub}@corp.example`, email_verified: false });
    const { browser, callback } = await toCallback(sub);
    const done = await browser.request(callback);
    assert.equal(done.status, 200, done.html.slice(0, 300));
    const identity = await server.stores.upstream.findIdentity('corp', sub);
    assert.equal(identity?.user.email, `${sub}@corp.example`);
    assert.equal(identity?.emailVerified, false);
  });

  test('O3: the callback replayed, or after 10 minutes → 400 "expired or already used"', async () => {
    const { browser, callback } = await toCallback(person());
    const first = await browser.request(callback);
    assert.equal(first.status, 200);
    const again = await browser.request(callback);
    assert.equal(again.status, 400);
    assert.equal(alertOf(again), 'This sign-in link expired or was already used. Start again.');

    const late = await toCallback(person());
    server.clock.advance(601);
    try {
      const page = await late.browser.request(late.callback);
      assert.equal(page.status, 400);
      assert.equal(alertOf(page), 'This sign-in link expired or was already used. Start again.');
    } finally {
      server.clock.advance(-601);
    }
  });

  test('O4: the callback in another browser → 400 "another browser"; the flow is spent, no session', async () => {
    const sub = person();
    const { browser, callback } = await toCallback(sub);
    const stranger = new FormBrowser(server.url);
    await stranger.request('/login'); // a pre-session cookie of its own
    const page = await stranger.request(callback);
    assert.equal(page.status, 400);
    assert.equal(alertOf(page), 'This sign-in was started in another browser. Start again in this one.');
    const bare = await new FormBrowser(server.url).request(callback);
    assert.equal(bare.status, 400);
    const original = await browser.request(callback);
    assert.equal(alertOf(original), 'This sign-in link expired or was already used. Start again.');
    assert.equal(await server.stores.upstream.findIdentity('corp', sub), null);
  });

  test('O5: a tampered state → 400; a flow of provider A at B’s callback → 400', async () => {
    const { browser, callback } = await toCallback(person());
    const tampered = new URL(callback);
    tampered.searchParams.set('state', `${tampered.searchParams.get('state')}x`);
    assert.equal((await browser.request(tampered.href)).status, 400);
    const crossed = callback.replace('/login/upstream/corp/', '/login/upstream/other/');
    const page = await browser.request(crossed);
    assert.equal(page.status, 400);
    assert.equal(alertOf(page), 'This sign-in could not be completed. Start again.');
  });

  test('O6: iss missing while advertised, or wrong → 400 "did not come from"', async () => {
    for (const change of ['remove', 'alter'] as const) {
      const sub = person();
      const { browser, callback } = await toCallback(sub);
      const url = new URL(callback);
      if (change === 'remove') url.searchParams.delete('iss');
      else url.searchParams.set('iss', 'http://127.0.0.1:1');
      const page = await browser.request(url.href);
      assert.equal(page.status, 400, change);
      assert.equal(alertOf(page), 'This sign-in response did not come from Corp SSO.');
      assert.equal(await server.stores.upstream.findIdentity('corp', sub), null);
    }
  });

  test('O7: another nonce in the flow → 502 "could not verify", no session, flow spent', async () => {
    const sub = person();
    const { browser, callback } = await toCallback(sub);
    const flows = await server.database.db.prisma.upstreamFlow.findMany({ where: { usedAt: null } });
    for (const f of flows) {
      await server.database.db.prisma.upstreamFlow.update({
        where: { id: f.id },
        data: {
          nonceEnc: upstreamCipher(parseUpstreamTokenKeys(TEST_KEY_K1)!).encrypt('a-different-nonce', {
            table: 'upstream_flows',
            column: 'nonce_enc',
            rowId: f.id,
          }),
        },
      });
    }
    const page = await browser.request(callback);
    assert.equal(page.status, 502);
    assert.equal(alertOf(page), 'Corp SSO sent a sign-in we could not verify.');
    assert.equal(await server.stores.upstream.findIdentity('corp', sub), null);
    assert.equal((await browser.request(callback)).status, 400);
  });

  test('O8: denied upstream → 200 "cancelled"; then Cancel → access_denied at the client with its state', async () => {
    const browser = new FormBrowser(server.url, { follow: [op.issuer] });
    const login = await openAuthorize(server, browser, client, { resource: rs.uri, state: 'st-o8' });
    await pressProvider(browser, login, 'corp');
    // The upstream answers with an error (as after the person aborts at the provider).
    const auth = op.requests.filter((r) => r.path === '/auth').at(-1)!;
    const denied = await browser.request(
      `/login/upstream/corp/callback?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state=${encodeURIComponent(auth.query.state!)}&iss=${encodeURIComponent(op.issuer)}`,
    );
    assert.equal(denied.status, 200);
    assert.equal(alertOf(denied), 'Sign-in with Corp SSO was cancelled.');
    assert.doesNotMatch(denied.html, /<b>no<\/b>|&lt;b&gt;no/);
    const cancelled = await browser.submit(denied, '/login/cancel');
    assert.ok(cancelled.redirectedTo);
    const back = new URL(cancelled.redirectedTo);
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('state'), 'st-o8');
    assert.equal(back.searchParams.get('iss'), server.url);
  });

  test('O9: upstream down at the start → 502 page; down at the callback → 502 "not responding", no session', async () => {
    const browser0 = new FormBrowser(server.url);
    const page0 = await pressProvider(browser0, await browser0.request('/login'), 'dead');
    assert.equal(page0.status, 502);
    assert.equal(alertOf(page0), 'Dead SSO is not reachable right now. Try again in a moment.');

    const sub = person();
    const { browser, callback } = await toCallback(sub);
    await op.setDown(true);
    try {
      const page = await browser.request(callback);
      assert.equal(page.status, 502);
      assert.equal(alertOf(page), 'Corp SSO is not responding. Try again in a moment.');
      assert.equal(await server.stores.upstream.findIdentity('corp', sub), null);
    } finally {
      await op.setDown(false);
    }
  });

  test('O10: prompt=none, a required provider and a password session → login_required', async () => {
    const required = await addResourceServer(server.stores, `${server.url}/req-${randomId()}`);
    await server.database.db.prisma.resourceServer.update({
      where: { uri: required.uri },
      data: { requiredUpstreamProvider: 'corp' },
    });
    const email = await addUser(server.stores);
    const browser = new FormBrowser(server.url);
    const login = await browser.request('/login');
    await browser.submit(login, '/login', { email, password: 'correct horse battery staple' });
    const page = await browser.request(
      authorizeUrl(server, client, { resource: required.uri, prompt: 'none' }),
    );
    assert.ok(page.redirectedTo);
    assert.equal(new URL(page.redirectedTo).searchParams.get('error'), 'login_required');
    // Without prompt=none: the sign-in page with that provider only.
    const only = await browser.request(authorizeUrl(server, client, { resource: required.uri }));
    assert.match(only.url, /\/login\?provider=corp&/);
    assert.match(only.html, /needs you to sign in with Corp SSO/);
    assert.doesNotMatch(only.html, /name="password"/);
    assert.doesNotMatch(only.html, /Sign in with Other SSO/);
    // An unknown provider is ignored: the full page (here the browser is signed in, so use a fresh one).
    const full = await new FormBrowser(server.url).request('/login?provider=nope');
    assert.match(full.html, /name="password"/);
    assert.match(full.html, /Sign in with Other SSO/);
    // Signing in there (the password session is replaced) satisfies it: the consent page follows.
    const sub = person();
    const passwordSession = browser.cookies.get('latchkey_session');
    assert.ok(passwordSession);
    browser.follow(op.issuer);
    const consent = await op.signIn(browser, await pressProvider(browser, only, 'corp'), sub);
    assert.notEqual(browser.cookies.get('latchkey_session'), passwordSession);
    const old = await server.database.db.prisma.session.findUnique({
      where: { tokenHash: hashSecret(passwordSession) },
    });
    assert.ok(old?.revokedAt, 'the session the browser had before is ended (session fixation)');
    assert.match(consent.html, /Signed in with Corp SSO as/);
    const back = await approve(browser, consent);
    assert.ok(back.searchParams.get('code'));
  });

  test('Google preset: offline access and hd sent; an ID token without the hosted domain → 403', async () => {
    const { browser, callback } = await toCallback(person(), 'goog');
    const auth = op.requests.filter((r) => r.path === '/auth').at(-1)!;
    assert.equal(auth.query.hd, 'corp.example');
    assert.equal(auth.query.access_type, 'offline');
    assert.equal(auth.query.prompt, 'consent');
    const page = await browser.request(callback);
    assert.equal(page.status, 403);
    assert.equal(alertOf(page), "Your Google account's email is not allowed here.");
    assert.ok(
      op.requests.some((r) => r.method === 'POST' && r.path === '/token/revocation'),
      'the refused sign-in’s tokens were revoked at the provider',
    );
  });

  test('Cancel with an authorization request that is no longer valid → the error page, no redirect', async () => {
    const browser = new FormBrowser(server.url);
    const login = await browser.request(
      `/login?return_to=${encodeURIComponent('/authorize?client_id=nobody&response_type=code')}`,
    );
    const page = await browser.submit(login, '/login/cancel');
    assert.equal(page.status, 400);
    assert.equal(page.redirectedTo, undefined);
    assert.match(page.html, /This sign-in request is not valid/);
  });
});
