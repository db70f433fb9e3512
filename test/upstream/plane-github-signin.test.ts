// The Plane and GitHub presets against their stand-ins: spec federation §11 P1–P5 and G1–G3.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
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
} from '../helpers/federation.ts';
import { exchangeCode } from '../helpers/flow.ts';
import { GitHubStandin as GitHub, type GitHubStandin } from '../helpers/github-standin.ts';
import { PlaneStandin } from '../helpers/plane-standin.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  freePort,
  introspect,
  type TestClient,
  type TestServer,
} from '../helpers/server.ts';

forEachDatabase('Plane and GitHub presets', (kind) => {
  let plane: PlaneStandin;
  let gh: GitHubStandin;
  let server: TestServer;
  let client: TestClient;

  before(async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    plane = await PlaneStandin.start({
      split: true,
      redirectUris: ['plane', 'plane-acme', 'generic'].map((id) => callbackUri(issuer, id)),
    });
    gh = await GitHub.start({ redirectUris: ['github', 'gh-link'].map((id) => callbackUri(issuer, id)) });
    const planeEntry = {
      type: 'plane',
      client_id: plane.clientId,
      client_secret: plane.clientSecret,
      base_url: plane.baseUrl,
      internal_base_url: plane.internalBaseUrl,
      create_users: true,
    };
    const ghEntry = {
      type: 'github',
      client_id: gh.clientId,
      client_secret: gh.clientSecret,
      base_url: gh.url,
      api_base_url: gh.url,
    };
    server = await startFederated(kind, {
      port,
      env: { UPSTREAM_HTTP_TIMEOUT: '2' },
      providers: () => [
        { id: 'plane', ...planeEntry, allow_anyone: true },
        { id: 'plane-acme', ...planeEntry, allowed_workspaces: ['acme'] },
        { id: 'github', ...ghEntry, create_users: true, allow_anyone: true },
        { id: 'gh-link', ...ghEntry, link_policy: 'verified_email' },
        // The generic OAuth 2 type, pointed at Plane's endpoints: userinfo = users/me, mapped by dot paths.
        {
          id: 'generic',
          type: 'oauth2',
          name: 'Generic',
          client_id: plane.clientId,
          client_secret: plane.clientSecret,
          token_endpoint_auth_method: 'client_secret_post',
          authorization_endpoint: `${plane.baseUrl}/auth/o/authorize-app/`,
          token_endpoint: `${plane.internalBaseUrl}/auth/o/token/`,
          userinfo_endpoint: `${plane.internalBaseUrl}/api/v1/users/me/`,
          scopes: ['read'],
          subject_claim: 'id',
          name_claim: 'display_name',
          username_claim: 'first_name',
          expose_claims: ['avatar_url'],
          create_users: true,
          allow_anyone: true,
        },
      ],
    });
    client = await addClient(server.stores);
  });
  after(async () => {
    await server?.close();
    await plane?.close();
    await gh?.close();
  });

  /** Signs in at /login (return_to '/') through provider `id`; returns the browser and the final page. */
  async function signIn(id: string, follow: string) {
    const browser = new FormBrowser(server.url, { follow: [follow] });
    const login = await browser.request('/login');
    const page = await pressProvider(browser, login, id);
    return { browser, page };
  }

  test('P1: the full flow; the stand-in saw every parameter; the login keeps the workspace', async () => {
    const rs = await addResourceServer(server.stores, `${server.url}/plane-${randomId()}`);
    const user = plane.addUser();
    plane.signedInAs = user.id;
    plane.installations = 1;
    const browser = new FormBrowser(server.url, { follow: [plane.baseUrl] });
    const login = await openAuthorize(server, browser, client, { resource: rs.uri });
    const consent = await pressProvider(browser, login, 'plane');
    assert.match(consent.html, new RegExp(`Signed in with Plane as ${user.email} \\(workspace acme\\)`));
    const back = await approve(browser, consent);
    const tokens = await exchangeCode(server, client, back.searchParams.get('code')!);
    assert.equal(tokens.status, 200);
    assert.equal((await introspect(server.url, rs, tokens.body.access_token as string)).active, true);

    const authorize = plane.recorded('authorize').at(-1)!;
    assert.equal(authorize.query.client_id, plane.clientId);
    assert.equal(authorize.query.response_type, 'code');
    assert.equal(authorize.query.redirect_uri, `${server.url}/login/upstream/plane/callback`);
    assert.equal(authorize.query.scope, 'read write');
    assert.ok(authorize.query.state);
    assert.equal(authorize.query.code_challenge_method, 'S256');
    assert.match(authorize.query.code_challenge ?? '', /^[A-Za-z0-9_-]{43}$/);
    const token = plane.recorded('token').at(-1)!;
    const body = token.body as Record<string, string>;
    assert.equal(body.grant_type, 'authorization_code');
    assert.equal(body.client_id, plane.clientId);
    assert.equal(body.client_secret, plane.clientSecret);
    assert.equal(body.redirect_uri, `${server.url}/login/upstream/plane/callback`);
    assert.match(body.code_verifier ?? '', /^[A-Za-z0-9_-]{43}$/);

    const identity = await server.stores.upstream.findIdentity('plane', user.id);
    assert.ok(identity, 'subject = the Plane user id');
    const login2 = await server.database.db.prisma.upstreamLogin.findFirst({
      where: { identityId: identity.id },
    });
    const claims = login2?.claims as { sub: string; claims: Record<string, unknown> };
    assert.equal(claims.sub, user.id);
    assert.equal(claims.claims.workspace_slug, 'acme');
    assert.equal(claims.claims.workspace_name, 'Acme');
    assert.equal(login2?.keyId, 'k1');
    assert.deepEqual(login2?.scopes, ['read', 'write']);
  });

  test('P2: allowed_workspaces ["acme"] with the installation "beta" → 403 naming it', async () => {
    const user = plane.addUser();
    plane.signedInAs = user.id;
    plane.chosenWorkspace = 'beta';
    try {
      const { page } = await signIn('plane-acme', plane.baseUrl);
      assert.equal(page.status, 403);
      assert.equal(alertOf(page), 'Your Plane workspace "beta" is not allowed here.');
    } finally {
      plane.chosenWorkspace = 'acme';
    }
  });

  test('P3: installations: 0 → 403; 2 without app_installation_id → 502; 2 with it → the named one', async () => {
    const user = plane.addUser();
    plane.signedInAs = user.id;
    try {
      plane.installations = 0;
      let { page } = await signIn('plane', plane.baseUrl);
      assert.equal(page.status, 403);
      assert.equal(alertOf(page), 'The Plane app is not installed in the workspace you chose.');

      plane.installations = 2;
      ({ page } = await signIn('plane', plane.baseUrl));
      assert.equal(page.status, 502);
      assert.equal(alertOf(page), 'Plane did not say which workspace you chose.');

      plane.sendInstallationId = true;
      plane.chosenWorkspace = 'beta';
      ({ page } = await signIn('plane', plane.baseUrl));
      assert.equal(page.status, 200, alertOf(page));
      const identity = await server.stores.upstream.findIdentity('plane', user.id);
      const latest = await server.database.db.prisma.upstreamLogin.findFirst({
        where: { identityId: identity!.id },
        orderBy: { createdAt: 'desc' },
      });
      assert.equal(
        (latest?.claims as { claims: { workspace_slug: string } } | undefined)?.claims.workspace_slug,
        'beta',
      );
    } finally {
      plane.installations = 1;
      plane.sendInstallationId = false;
      plane.chosenWorkspace = 'acme';
    }
  });

  test('P4: the browser goes to base_url; token and API calls go to internal_base_url', async () => {
    const user = plane.addUser();
    plane.signedInAs = user.id;
    const before = plane.requests.length;
    const { page } = await signIn('plane', plane.baseUrl);
    assert.equal(page.status, 200);
    const seen = plane.requests.slice(before);
    assert.deepEqual(
      seen.map((r) => `${r.endpoint}@${r.via}`),
      ['authorize@main', 'token@internal', 'me@internal', 'installations@internal'],
    );
  });

  test('P5: users/me 401 → 502 "could not verify"; users/me hanging → 502 "not responding"', async () => {
    const user = plane.addUser();
    plane.signedInAs = user.id;
    plane.faults.status.me = 401;
    try {
      const { page } = await signIn('plane', plane.baseUrl);
      assert.equal(page.status, 502);
      assert.equal(alertOf(page), 'Plane sent a sign-in we could not verify.');
    } finally {
      delete plane.faults.status.me;
    }
    plane.faults.slow = ['me'];
    try {
      const { page } = await signIn('plane', plane.baseUrl);
      assert.equal(page.status, 502);
      assert.equal(alertOf(page), 'Plane is not responding. Try again in a moment.');
    } finally {
      plane.faults.slow = false;
      plane.host.releaseHeld();
    }
    assert.equal(await server.stores.upstream.findIdentity('plane', user.id), null);
  });

  test('G1: non-expiring tokens; subject = the numeric id; login in claims; the verified primary email', async () => {
    const user = gh.addUser({
      email: 'public@example.org',
      emails: [
        { email: 'secondary@example.org', primary: false, verified: true, visibility: null },
        { email: `primary-${randomId()}@example.org`, primary: true, verified: true, visibility: 'private' },
      ],
    });
    gh.signedInAs = user.id;
    const { page } = await signIn('github', gh.url);
    assert.equal(page.status, 200, alertOf(page));
    const identity = await server.stores.upstream.findIdentity('github', String(user.id));
    assert.ok(identity);
    assert.equal(identity.email, user.emails[1]!.email);
    assert.equal(identity.emailVerified, true);
    const login = await server.database.db.prisma.upstreamLogin.findFirst({
      where: { identityId: identity.id },
    });
    assert.equal((login?.claims as { claims: { login: string } } | undefined)?.claims.login, user.login);
    assert.equal(login?.accessExpiresAt, null);
    assert.equal(login?.refreshTokenEnc, null);
    const userAgent = gh.recorded('user').at(-1)!.headers['user-agent'];
    assert.equal(userAgent, 'latchkey');
  });

  test('G2: 200 {"error":"bad_verification_code"} → 400 "took too long", no session', async () => {
    const user = gh.addUser();
    gh.signedInAs = user.id;
    gh.tokenError = 'bad_verification_code';
    try {
      const { browser, page } = await signIn('github', gh.url);
      assert.equal(page.status, 400);
      assert.equal(alertOf(page), 'Sign-in took too long or was already completed. Try again.');
      const home = await browser.request('/');
      assert.doesNotMatch(home.html, /You are signed in/);
    } finally {
      gh.tokenError = false;
    }
  });

  test('G3: /user/emails 403 → the public email, unverified; verified_email does not link it (409)', async () => {
    const email = await addUser(server.stores, `gh-${randomId()}@example.org`);
    const user = gh.addUser({ email, emails: [] });
    gh.signedInAs = user.id;
    gh.faults.status.emails = 403;
    try {
      const { page } = await signIn('gh-link', gh.url);
      assert.equal(page.status, 409);
      assert.match(alertOf(page) ?? '', /^An account with this email already exists\./);
      assert.equal(await server.stores.upstream.findIdentity('gh-link', String(user.id)), null);
      const created = await signIn('github', gh.url);
      assert.equal(created.page.status, 409, 'an existing local email is never taken over');
      const other = gh.addUser({ email: `public-${randomId()}@example.org`, emails: [] });
      gh.signedInAs = other.id;
      const fresh = await signIn('github', gh.url);
      assert.equal(fresh.page.status, 200, alertOf(fresh.page));
      const identity = await server.stores.upstream.findIdentity('github', String(other.id));
      assert.equal(identity?.email, other.email);
      assert.equal(identity?.emailVerified, false);
    } finally {
      delete gh.faults.status.emails;
    }
  });

  test('oauth2: the identity from userinfo through the claim mapping; PKCE and the exact redirect URI', async () => {
    const user = plane.addUser({ display_name: 'Mapped Name', first_name: 'Mapper' });
    plane.signedInAs = user.id;
    const before = plane.requests.length;
    const { page } = await signIn('generic', plane.baseUrl);
    assert.equal(page.status, 200, `${page.url} ${page.html.slice(0, 300)}`);
    const identity = await server.stores.upstream.findIdentity('generic', user.id);
    assert.equal(identity?.user.email, user.email);
    assert.equal(identity?.user.name, 'Mapped Name');
    assert.equal(identity?.emailVerified, false);
    const login = await server.database.db.prisma.upstreamLogin.findFirst({
      where: { identityId: identity!.id },
    });
    const claims = login?.claims as { username: string; claims: Record<string, unknown> } | undefined;
    assert.equal(claims?.username, 'Mapper');
    assert.deepEqual(claims?.claims, { avatar_url: user.avatar_url });
    const seen = plane.requests.slice(before);
    assert.deepEqual(
      seen.map((r) => r.endpoint),
      ['authorize', 'token', 'me'],
    );
    assert.equal(seen[0]?.query.redirect_uri, `${server.url}/login/upstream/generic/callback`);
    assert.equal(seen[0]?.query.scope, 'read');
    assert.equal(seen[2]?.headers.accept, 'application/json');
  });
});
