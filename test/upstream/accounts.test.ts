// Accounts and policy for upstream sign-in (spec federation §4), through the GitHub stand-in: §11 L1–L9.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { normalizeOidcClaims } from '../../src/upstream/providers/oidc.ts';
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
import { exchangeCode, refreshToken } from '../helpers/flow.ts';
import { GitHubStandin, type GitHubUser } from '../helpers/github-standin.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  freePort,
  introspect,
  startServer,
  type TestClient,
  type TestServer,
} from '../helpers/server.ts';

forEachDatabase('upstream accounts and policy', (kind) => {
  let gh: GitHubStandin;
  let server: TestServer;
  let client: TestClient;

  before(async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const ids = ['gh-sub', 'gh-link', 'gh-dom', 'gh-org'];
    gh = await GitHubStandin.start({ redirectUris: ids.map((id) => callbackUri(issuer, id)) });
    const entry = {
      type: 'github',
      client_id: gh.clientId,
      client_secret: gh.clientSecret,
      base_url: gh.url,
      api_base_url: gh.url,
    };
    server = await startFederated(kind, {
      port,
      providers: () => [
        { id: 'gh-sub', ...entry, create_users: true, allow_anyone: true },
        { id: 'gh-link', ...entry, link_policy: 'verified_email' },
        { id: 'gh-dom', ...entry, create_users: true, allowed_email_domains: ['example.com'] },
        {
          id: 'gh-org',
          ...entry,
          create_users: true,
          allowed_orgs: ['Acme'],
          scopes: ['read:user', 'user:email', 'read:org'],
        },
      ],
    });
    client = await addClient(server.stores);
  });
  after(async () => {
    await server?.close();
    await gh?.close();
  });

  function ghUser(email: string, verified = true): GitHubUser {
    // GitHub falls back to the public email (unverified) when no primary email is verified.
    const user = gh.addUser({
      email: verified ? null : email,
      emails: [{ email, primary: true, verified, visibility: 'private' }],
    });
    gh.signedInAs = user.id;
    return user;
  }

  async function signIn(id: string) {
    const browser = new FormBrowser(server.url, { follow: [gh.url] });
    const page = await pressProvider(browser, await browser.request('/login'), id);
    return { browser, page };
  }

  test('L1: the same (provider, sub) again → the same user; the identity’s email follows, users.email does not', async () => {
    const email = `l1-${randomId()}@example.org`;
    const user = ghUser(email);
    assert.equal((await signIn('gh-sub')).page.status, 200);
    const first = await server.stores.upstream.findIdentity('gh-sub', String(user.id));
    user.emails = [{ email: `changed-${email}`, primary: true, verified: true, visibility: null }];
    const users = (await server.stores.users.list()).length;
    assert.equal((await signIn('gh-sub')).page.status, 200);
    const second = await server.stores.upstream.findIdentity('gh-sub', String(user.id));
    assert.equal(second?.userId, first?.userId);
    assert.equal((await server.stores.users.list()).length, users, 'no new user');
    assert.equal(second?.email, `changed-${email}`);
    assert.equal(second?.user.email, email);
  });

  test('L2: verified_email links a verified email; an unverified one → 409', async () => {
    const email = await addUser(server.stores, `l2-${randomId()}@example.org`);
    const unverified = ghUser(email, false);
    let { page } = await signIn('gh-link');
    assert.equal(page.status, 409);
    assert.equal(await server.stores.upstream.findIdentity('gh-link', String(unverified.id)), null);
    const verified = ghUser(email, true);
    ({ page } = await signIn('gh-link'));
    assert.equal(page.status, 200, alertOf(page));
    const identity = await server.stores.upstream.findIdentity('gh-link', String(verified.id));
    assert.equal(identity?.user.email, email);
  });

  test('L3: link_policy subject and a local user with that email → 409, no link', async () => {
    const email = await addUser(server.stores, `l3-${randomId()}@example.org`);
    const user = ghUser(email);
    const { page } = await signIn('gh-sub');
    assert.equal(page.status, 409);
    assert.equal(
      alertOf(page),
      'An account with this email already exists. Sign in with your password, or ask the operator to link your GitHub account.',
    );
    assert.equal(await server.stores.upstream.findIdentity('gh-sub', String(user.id)), null);
  });

  test('L4: create_users false and an unknown person → 403 "No account here matches"', async () => {
    ghUser(`l4-${randomId()}@example.org`);
    const { page } = await signIn('gh-link');
    assert.equal(page.status, 403);
    assert.equal(alertOf(page), 'No account here matches your GitHub account. Ask the operator for access.');
  });

  test('L5: allowed_email_domains: verified example.com passes; evil.com, unverified, subdomain → 403', async () => {
    ghUser(`l5-${randomId()}@example.com`);
    assert.equal((await signIn('gh-dom')).page.status, 200);
    const revocations = gh.recorded('revoke').length;
    for (const [email, verified] of [
      [`l5-${randomId()}@evil.com`, true],
      [`l5-${randomId()}@example.com`, false],
      [`l5-${randomId()}@sub.example.com`, true],
    ] as const) {
      ghUser(email, verified);
      const { page } = await signIn('gh-dom');
      assert.equal(page.status, 403, email);
      assert.equal(alertOf(page), "Your GitHub account's email is not allowed here.");
    }
    // Refused after the code exchange: each token was handed back to GitHub (DELETE /applications/…/grant).
    const revoked = gh.recorded('revoke').slice(revocations);
    assert.equal(revoked.length, 3);
    for (const r of revoked) {
      const token = (r.body as { access_token: string }).access_token;
      assert.equal(gh.accessTokens.get(token)?.active, false, 'the upstream token no longer works');
    }
  });

  test('allowed_orgs: a member of an allowed organization signs in; anyone else → 403', async () => {
    const outsider = ghUser(`org-${randomId()}@example.org`);
    outsider.orgs = ['other'];
    const revocations = gh.recorded('revoke').length;
    let { page } = await signIn('gh-org');
    assert.equal(page.status, 403);
    assert.equal(alertOf(page), 'Your GitHub account is not in an organization allowed here.');
    assert.equal(gh.recorded('revoke').length, revocations + 1, 'the refused sign-in’s token was revoked');
    const member = ghUser(`org-${randomId()}@example.org`);
    member.orgs = ['other', 'acme'];
    ({ page } = await signIn('gh-org'));
    assert.equal(page.status, 200, alertOf(page));
    assert.equal(gh.recorded('authorize').at(-1)?.query.scope, 'read:user user:email read:org');
  });

  test('L6: a disabled user → 403; enabled again → signed in', async () => {
    const email = `l6-${randomId()}@example.org`;
    ghUser(email);
    assert.equal((await signIn('gh-sub')).page.status, 200);
    await server.stores.users.setDisabled(email, true);
    const { page } = await signIn('gh-sub');
    assert.equal(page.status, 403);
    assert.equal(alertOf(page), 'This account cannot sign in here.');
    await server.stores.users.setDisabled(email, false);
    assert.equal((await signIn('gh-sub')).page.status, 200);
  });

  test('L7: a second upstream subject for a user already linked at that provider → 409', async () => {
    const email = await addUser(server.stores, `l7-${randomId()}@example.org`);
    ghUser(email);
    assert.equal((await signIn('gh-link')).page.status, 200);
    ghUser(email);
    const { page } = await signIn('gh-link');
    assert.equal(page.status, 409);
    assert.equal(alertOf(page), 'This account is already linked to another GitHub account.');
  });

  test('L8: unlink revokes the identity’s grants (inactive at once on a second instance) and its sessions', async () => {
    // A second instance on the same database (no providers needed to answer /introspect).
    const second = await startServer(kind, { database: server.database });
    try {
      const rs = await addResourceServer(server.stores, `${server.url}/l8-${randomId()}`);
      const email = `l8-${randomId()}@example.org`;
      ghUser(email);
      const browser = new FormBrowser(server.url, { follow: [gh.url] });
      const login = await openAuthorize(server, browser, client, { resource: rs.uri });
      const back = await approve(browser, await pressProvider(browser, login, 'gh-sub'));
      const tokens = await exchangeCode(server, client, back.searchParams.get('code')!);
      const access = tokens.body.access_token as string;
      assert.equal((await introspect(second.url, rs, access)).active, true);
      const user = await server.stores.users.findByEmail(email);
      const result = await server.stores.upstream.unlink(user!.id, 'gh-sub', server.clock.now());
      assert.deepEqual(result, { grants: 1, sessions: 1 });
      await server.app.latchkey.changes.flush();
      await second.app.latchkey.changes.flush();
      assert.deepEqual(await introspect(server.url, rs, access), { active: false });
      assert.deepEqual(await introspect(second.url, rs, access), { active: false });
      const refreshed = await refreshToken(server, client, tokens.body.refresh_token as string);
      assert.equal(refreshed.body.error, 'invalid_grant');
      const home = await browser.request('/');
      assert.doesNotMatch(home.html, /You are signed in/);
      const grant = await server.database.db.prisma.grant.findFirst({ where: { userId: user!.id } });
      assert.equal(grant?.revokedReason, 'upstream_unlinked');
    } finally {
      await second.close();
    }
  });
});

describe('L9: the OIDC normalizer', () => {
  test('email_verified "false" (a string) is unverified; true and "true" are verified', () => {
    const config = { type: 'google' as const, exposeClaims: [] };
    const base = { sub: 's', email: 'A@Example.com' };
    assert.equal(normalizeOidcClaims({ ...base, email_verified: 'false' }, config).emailVerified, false);
    assert.equal(normalizeOidcClaims({ ...base, email_verified: 'true' }, config).emailVerified, true);
    assert.equal(normalizeOidcClaims({ ...base, email_verified: true }, config).emailVerified, true);
    assert.equal(normalizeOidcClaims({ ...base, email_verified: 1 }, config).emailVerified, false);
    assert.equal(normalizeOidcClaims({ ...base, email_verified: 'false' }, config).email, 'a@example.com');
    assert.equal(normalizeOidcClaims({ ...base, hd: 'example.com' }, config).extra.hd, 'example.com');
  });
});
