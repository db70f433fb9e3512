// Self-tests of the federation test infrastructure: the real OIDC upstream (oidc-provider), the Plane and GitHub
// stand-ins, and FormBrowser's cross-origin redirects with one cookie jar per origin. No Latchkey here: a strict
// OAuth client (oauth4webapi) or plain fetch plays Latchkey's part, so a failure points at the helper itself.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { FormBrowser } from '../helpers/browser.ts';
import { GitHubStandin } from '../helpers/github-standin.ts';
import { freePort } from '../helpers/net.ts';
import { PlaneStandin } from '../helpers/plane-standin.ts';
import { startUpstreamOidc, type UpstreamOidc } from '../helpers/upstream-oidc.ts';

const VERIFIER = 'standin-verifier-0123456789-0123456789-0123456789';
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');

async function form(url: string, body: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(body),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', text };
}

describe('upstream OIDC (oidc-provider)', () => {
  let op: UpstreamOidc;
  let redirectUri: string;
  before(async () => {
    redirectUri = `http://127.0.0.1:${await freePort()}/login/upstream/corp/callback`;
    op = await startUpstreamOidc({ redirectUris: [redirectUri], rotateRefreshToken: true });
    op.accounts.set('alice', { email: 'alice@corp.example', email_verified: true, name: 'Alice' });
  });
  after(() => op.close());

  test('code + PKCE + nonce, iss in the response, userinfo, refresh with reuse detection, revocation, down/up', async () => {
    const issuer = new URL(op.issuer);
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { [oauth.allowInsecureRequests]: true }),
    );
    assert.equal(as.authorization_response_iss_parameter_supported, true);
    const client: oauth.Client = { client_id: op.clientId };
    const auth = oauth.ClientSecretBasic(op.clientSecret);
    const nonce = oauth.generateRandomNonce();
    const authorize = new URL(as.authorization_endpoint!);
    for (const [k, v] of Object.entries({
      client_id: op.clientId,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'openid email profile',
      state: 'st-1',
      nonce,
      code_challenge: CHALLENGE,
      code_challenge_method: 'S256',
    }))
      authorize.searchParams.set(k, v);

    // The "Latchkey" page that redirects to the upstream is played by a direct request here; the browser's issuer
    // is another origin, so the redirect back to the callback is returned instead of followed.
    const browser = new FormBrowser('http://127.0.0.1:9');
    const back = await op.signIn(browser, await browser.request(authorize.href), 'alice');
    assert.ok(back.redirectedTo?.startsWith(redirectUri), `came back to ${back.redirectedTo}`);
    assert.ok(browser.jar(op.issuer).size > 0, 'the upstream kept its own cookies');
    assert.equal(browser.cookies.size, 0, 'none of them went to another jar');

    const callback = new URL(back.redirectedTo!);
    assert.equal(callback.searchParams.get('iss'), op.issuer);
    const params = oauth.validateAuthResponse(as, client, callback, 'st-1');
    const opts = { [oauth.allowInsecureRequests]: true };
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(as, client, auth, params, redirectUri, VERIFIER, opts),
      { expectedNonce: nonce },
    );
    assert.ok(tokens.refresh_token);
    assert.equal(oauth.getValidatedIdTokenClaims(tokens)?.email, undefined, 'email only in userinfo');
    const info = await oauth.processUserInfoResponse(
      as,
      client,
      'alice',
      await oauth.userInfoRequest(as, client, tokens.access_token, opts),
    );
    assert.equal(info.email, 'alice@corp.example');
    assert.equal(info.email_verified, true);
    assert.deepEqual(op.issuedAccessTokens, [tokens.access_token]);
    const authRequest = op.requests.find((r) => r.path === '/auth');
    assert.equal(authRequest?.query.code_challenge_method, 'S256');

    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token, opts),
    );
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token, 'rotated');
    // Reuse of the rotated refresh token is refused.
    await assert.rejects(
      async () =>
        oauth.processRefreshTokenResponse(
          as,
          client,
          await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, opts),
        ),
      (e: unknown) => e instanceof oauth.ResponseBodyError && e.error === 'invalid_grant',
    );
    assert.deepEqual(
      op.refreshes.map((r) => r.ok),
      [true, false],
    );

    const revoked = await oauth.revocationRequest(as, client, auth, refreshed.access_token, opts);
    assert.equal(revoked.status, 200);

    await op.setDown(true);
    await assert.rejects(fetch(`${op.issuer}/.well-known/openid-configuration`));
    await op.setDown(false);
    assert.equal((await fetch(`${op.issuer}/.well-known/openid-configuration`)).status, 200);
  });
});

describe('Plane stand-in', () => {
  let plane: PlaneStandin;
  const redirectUri = 'http://127.0.0.1:9/login/upstream/plane/callback';
  before(async () => {
    plane = await PlaneStandin.start({ redirectUris: [redirectUri], split: true });
    plane.addUser({ email: 'john@acme.example' });
  });
  after(() => plane.close());

  async function code(extra: Record<string, string> = {}) {
    const url = new URL('/auth/o/authorize-app/', plane.baseUrl);
    for (const [k, v] of Object.entries({
      client_id: plane.clientId,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: 'read write',
      state: 's',
      code_challenge: CHALLENGE,
      code_challenge_method: 'S256',
      ...extra,
    }))
      url.searchParams.set(k, v);
    const res = await fetch(url, { redirect: 'manual' });
    return { status: res.status, location: new URL(res.headers.get('location') ?? 'http://none.invalid/') };
  }

  test('authorize, code exchange (post and Basic), users/me, installations, refresh, knobs', async () => {
    const unknown = await code({ redirect_uri: 'http://127.0.0.1:9/other' });
    assert.equal(unknown.status, 400);

    plane.sendInstallationId = true;
    const first = await code();
    assert.equal(first.status, 302);
    assert.equal(first.location.searchParams.get('state'), 's');
    assert.equal(first.location.searchParams.get('app_installation_id'), plane.workspaces[0]!.installationId);
    const c = first.location.searchParams.get('code')!;
    const tokenUrl = `${plane.internalBaseUrl}/auth/o/token/`;
    const exchange = (verifier: string) =>
      form(tokenUrl, {
        grant_type: 'authorization_code',
        code: c,
        redirect_uri: redirectUri,
        code_verifier: verifier,
        client_id: plane.clientId,
        client_secret: plane.clientSecret,
      });
    const tokens = JSON.parse((await exchange(VERIFIER)).text) as Record<string, string | number>;
    assert.equal(tokens.token_type, 'Bearer');
    assert.equal(tokens.expires_in, 86400);
    assert.equal((await exchange(VERIFIER)).status, 400, 'codes are single use');
    assert.equal(plane.recorded('token')[0]!.via, 'internal');
    assert.equal(plane.recorded('authorize')[0]!.via, 'main');

    const bad = await code();
    const wrongVerifier = await form(tokenUrl, {
      grant_type: 'authorization_code',
      code: bad.location.searchParams.get('code')!,
      redirect_uri: redirectUri,
      code_verifier: 'wrong',
      client_id: plane.clientId,
      client_secret: plane.clientSecret,
    });
    assert.deepEqual(JSON.parse(wrongVerifier.text), { error: 'invalid_grant' });

    const api = (path: string, token = String(tokens.access_token)) =>
      fetch(`${plane.internalBaseUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const me = (await (await api('/api/v1/users/me/')).json()) as Record<string, string>;
    assert.equal(me.email, 'john@acme.example');
    assert.equal((await api('/api/v1/users/me/', 'nope')).status, 401);
    const inst = (await (await api('/auth/o/app-installation/')).json()) as {
      workspace_detail: { slug: string };
      status: string;
    }[];
    assert.deepEqual(
      inst.map((i) => [i.workspace_detail.slug, i.status]),
      [['acme', 'installed']],
    );
    plane.installations = 2;
    assert.equal(((await (await api('/auth/o/app-installation/')).json()) as unknown[]).length, 2);
    plane.installations = 1;

    // Refresh with Basic; rotation on: the old refresh token is spent.
    const basic = `Basic ${Buffer.from(`${plane.clientId}:${plane.clientSecret}`).toString('base64')}`;
    const refresh = (rt: string) =>
      form(tokenUrl, { grant_type: 'refresh_token', refresh_token: rt }, { authorization: basic });
    const r1 = JSON.parse((await refresh(String(tokens.refresh_token))).text) as Record<string, string>;
    assert.notEqual(r1.refresh_token, tokens.refresh_token);
    assert.equal((await refresh(String(tokens.refresh_token))).status, 400);
    plane.rotation = false;
    const r2 = JSON.parse((await refresh(r1.refresh_token!)).text) as Record<string, string>;
    assert.equal(r2.refresh_token, r1.refresh_token, 'without rotation the refresh token is kept');
    plane.revokeAll = true;
    assert.deepEqual(JSON.parse((await refresh(r1.refresh_token!)).text), { error: 'invalid_grant' });
    plane.revokeAll = false;
    assert.equal(plane.refreshCount, 4);
    plane.clientSecret = 'changed';
    assert.equal((await refresh(r1.refresh_token!)).status, 401);

    plane.faults.status5xx = 503;
    assert.equal((await api('/api/v1/users/me/')).status, 503);
    plane.faults.status5xx = false;
    plane.faults.status.me = 401;
    assert.equal((await api('/api/v1/users/me/', String(r2.access_token))).status, 401);
    plane.faults.status = {};

    // slow: the answer waits until the fault is released; the caller's timeout fires first.
    plane.faults.slow = ['me'];
    await assert.rejects(
      fetch(`${plane.internalBaseUrl}/api/v1/users/me/`, {
        headers: { authorization: `Bearer ${r2.access_token}` },
        signal: AbortSignal.timeout(200),
      }),
    );
    plane.faults.slow = false;
    plane.host.releaseHeld();

    plane.deny = true;
    const denied = await code();
    assert.equal(denied.location.searchParams.get('error'), 'access_denied');
    plane.deny = false;

    await plane.setDown(true);
    await assert.rejects(fetch(`${plane.internalBaseUrl}/api/v1/users/me/`));
    await plane.setDown(false);
    assert.equal((await api('/api/v1/users/me/', String(r2.access_token))).status, 200);
  });
});

describe('GitHub stand-in', () => {
  let gh: GitHubStandin;
  const redirectUri = 'http://127.0.0.1:9/login/upstream/github/callback';
  before(async () => {
    gh = await GitHubStandin.start({ redirectUris: [redirectUri] });
    gh.addUser({ login: 'octo', email: 'octo-public@example.com' });
  });
  after(() => gh.close());

  async function code() {
    const url = new URL('/login/oauth/authorize', gh.url);
    for (const [k, v] of Object.entries({
      client_id: gh.clientId,
      redirect_uri: redirectUri,
      scope: 'read:user user:email',
      state: 's',
      code_challenge: CHALLENGE,
      code_challenge_method: 'S256',
    }))
      url.searchParams.set(k, v);
    const res = await fetch(url, { redirect: 'manual' });
    return new URL(res.headers.get('location')!).searchParams.get('code')!;
  }
  const token = (body: Record<string, string>, accept = 'application/json') =>
    form(
      `${gh.url}/login/oauth/access_token`,
      { client_id: gh.clientId, client_secret: gh.clientSecret, ...body },
      {
        accept,
      },
    );

  test('non-expiring tokens, 200-with-error answers, form answers without Accept, user and emails', async () => {
    const c = await code();
    const wrong = await token({
      code: c,
      redirect_uri: redirectUri,
      code_verifier: VERIFIER,
      client_secret: 'x',
    });
    assert.equal(wrong.status, 200);
    assert.equal(JSON.parse(wrong.text).error, 'incorrect_client_credentials');
    const ok = await token({ code: c, redirect_uri: redirectUri, code_verifier: VERIFIER });
    const t = JSON.parse(ok.text) as Record<string, unknown>;
    assert.equal(t.token_type, 'bearer');
    assert.equal(t.scope, 'read:user,user:email');
    assert.equal(t.expires_in, undefined);
    assert.equal(t.refresh_token, undefined);
    const again = await token({ code: c, redirect_uri: redirectUri, code_verifier: VERIFIER });
    assert.equal(again.status, 200);
    assert.equal(JSON.parse(again.text).error, 'bad_verification_code');
    const asForm = await token(
      { code: await code(), redirect_uri: redirectUri, code_verifier: VERIFIER },
      '*/*',
    );
    assert.match(asForm.type, /x-www-form-urlencoded/);
    assert.ok(new URLSearchParams(asForm.text).get('access_token'));
    gh.tokenError = 'bad_verification_code';
    const forced = await token({ code: await code(), redirect_uri: redirectUri, code_verifier: VERIFIER });
    assert.equal(JSON.parse(forced.text).error, 'bad_verification_code');
    gh.tokenError = false;

    const api = (path: string) =>
      fetch(`${gh.url}${path}`, {
        headers: { authorization: `Bearer ${t.access_token}`, accept: 'application/vnd.github+json' },
      });
    const user = (await (await api('/user')).json()) as Record<string, unknown>;
    assert.equal(typeof user.id, 'number');
    assert.equal(user.login, 'octo');
    const emails = (await (await api('/user/emails')).json()) as { primary: boolean; verified: boolean }[];
    assert.ok(emails.some((e) => e.primary && e.verified));
    gh.faults.status.emails = 403;
    assert.equal((await api('/user/emails')).status, 403);
    gh.faults.status = {};

    const revoke = await fetch(`${gh.url}/applications/${gh.clientId}/grant`, {
      method: 'DELETE',
      headers: {
        authorization: `Basic ${Buffer.from(`${gh.clientId}:${gh.clientSecret}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ access_token: t.access_token }),
    });
    assert.equal(revoke.status, 204);
    assert.equal((await api('/user')).status, 401);
  });

  test('expiring tokens: refresh rotates; bad_refresh_token with 200 after revokeAll', async () => {
    gh.expiring = true;
    const t = JSON.parse(
      (await token({ code: await code(), redirect_uri: redirectUri, code_verifier: VERIFIER })).text,
    ) as Record<string, string | number>;
    assert.equal(t.expires_in, 28800);
    assert.equal(t.refresh_token_expires_in, 15897600);
    const before = gh.refreshCount;
    const r = JSON.parse(
      (await token({ grant_type: 'refresh_token', refresh_token: String(t.refresh_token) })).text,
    );
    assert.ok(String(r.access_token).startsWith('ghu_'));
    assert.notEqual(r.refresh_token, t.refresh_token);
    const reused = await token({ grant_type: 'refresh_token', refresh_token: String(t.refresh_token) });
    assert.equal(JSON.parse(reused.text).error, 'bad_refresh_token');
    gh.revokeAll = true;
    const revoked = await token({ grant_type: 'refresh_token', refresh_token: String(r.refresh_token) });
    assert.equal(revoked.status, 200);
    assert.equal(JSON.parse(revoked.text).error, 'bad_refresh_token');
    gh.revokeAll = false;
    assert.equal(gh.refreshCount - before, 3);
    gh.expiring = false;
  });
});

describe('FormBrowser across origins', () => {
  // Two sites: A (the issuer) sets a cookie and redirects to B; B sets its own cookie of the same name and sends
  // the browser back to A, which echoes the cookies it got; B's /away redirects to a third origin (not followed).
  function site(name: string, other: () => string) {
    return http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x.invalid');
      const seen = req.headers.cookie ?? '';
      if (url.pathname === '/start') {
        res.writeHead(302, { location: `${other()}/hop`, 'set-cookie': `jar=${name}; Path=/; HttpOnly` });
      } else if (url.pathname === '/hop') {
        res.writeHead(303, { location: `${other()}/echo`, 'set-cookie': `jar=${name}; Path=/` });
      } else if (url.pathname === '/away') {
        res.writeHead(302, { location: 'http://127.0.0.1:9/elsewhere' });
      } else {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`${name} saw [${seen}]`);
        return;
      }
      res.end();
    });
  }

  test('follows redirects only to followed origins and keeps cookies per origin', async () => {
    let aUrl = '';
    let bUrl = '';
    const a = site('a', () => bUrl);
    const b = site('b', () => aUrl);
    for (const s of [a, b]) {
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
    }
    aUrl = `http://127.0.0.1:${(a.address() as AddressInfo).port}`;
    bUrl = `http://127.0.0.1:${(b.address() as AddressInfo).port}`;
    try {
      const closed = new FormBrowser(aUrl);
      const stopped = await closed.request('/start');
      assert.equal(stopped.redirectedTo, `${bUrl}/hop`, 'an origin not followed is returned, not followed');

      const browser = new FormBrowser(aUrl, { follow: [bUrl] });
      const page = await browser.request('/start');
      assert.equal(page.url, `${aUrl}/echo`);
      assert.equal(page.html, 'a saw [jar=a]', "B's cookie stayed in B's jar");
      assert.equal(browser.jar(bUrl).get('jar'), 'b');
      assert.equal(browser.cookies.get('jar'), 'a');
      const away = await browser.request(`${bUrl}/away`);
      assert.equal(away.redirectedTo, 'http://127.0.0.1:9/elsewhere');
    } finally {
      a.close();
      b.close();
    }
  });
});
