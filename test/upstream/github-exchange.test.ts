// Token exchange after a real sign-in through the GitHub stand-in (spec federation §6.2–6.3, §10; acceptance G1's
// exchange part and G4), on both databases: OAuth-app tokens never expire (no expires_in, never refreshed);
// expiring GitHub-App tokens are refreshed at /login/oauth/access_token after 8 hours, the rotated refresh token
// stored; GitHub's 200 {"error":"bad_refresh_token"} revokes like invalid_grant.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { allowUpstream, exchange, federatedGrant } from '../helpers/federated-grants.ts';
import { approve, callbackUri, openAuthorize, pressProvider, startFederated } from '../helpers/federation.ts';
import { exchangeCode } from '../helpers/flow.ts';
import { GitHubStandin } from '../helpers/github-standin.ts';
import {
  addClient,
  addResourceServer,
  freePort,
  introspect,
  type TestClient,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';

forEachDatabase('token exchange with GitHub', (kind) => {
  let gh: GitHubStandin;
  let server: TestServer;
  let client: TestClient;
  let n = 0;

  before(async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    gh = await GitHubStandin.start({ redirectUris: [callbackUri(issuer, 'github')] });
    server = await startFederated(kind, {
      port,
      providers: () => [
        {
          id: 'github',
          type: 'github',
          client_id: gh.clientId,
          client_secret: gh.clientSecret,
          base_url: gh.url,
          api_base_url: gh.url,
          create_users: true,
          allow_anyone: true,
        },
      ],
    });
    client = await addClient(server.stores);
  });
  after(async () => {
    await server?.close();
    await gh?.close();
  });

  /** A new GitHub user signs in and approves; the resource server may have the GitHub token. */
  async function signIn(): Promise<{ rs: TestResourceServer; token: string; loginId: string }> {
    const user = gh.addUser();
    gh.signedInAs = user.id;
    const rs = await addResourceServer(server.stores, `${server.url}/mcp-gh-${n++}`);
    await allowUpstream(server, rs, { token: ['github'] });
    const browser = new FormBrowser(server.url, { follow: [gh.url] });
    const login = await openAuthorize(server, browser, client, { resource: rs.uri });
    const back = await approve(browser, await pressProvider(browser, login, 'github'));
    const t = await exchangeCode(server, client, back.searchParams.get('code')!, { resource: rs.uri });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    const token = String(t.body.access_token);
    const at = await server.stores.tokens.findAccessToken(token);
    assert.ok(at?.grant.upstreamLoginId, 'the grant records its upstream sign-in');
    return { rs, token, loginId: at.grant.upstreamLoginId };
  }

  test('G1: a non-expiring OAuth-app token comes back without expires_in and is never refreshed', async () => {
    gh.expiring = false;
    const { rs, token } = await signIn();
    const refreshes = gh.refreshCount;
    server.clock.advance(3000); // within Latchkey's own access token lifetime
    const ok = await exchange(server.url, rs, token);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.ok(String(ok.body.access_token).startsWith('gho_'));
    assert.equal(ok.body.expires_in, undefined);
    assert.equal(ok.body.scope, 'read:user user:email');
    assert.equal(gh.refreshCount, refreshes);
  });

  test('G4: expiring tokens: after 8 hours the exchange refreshes with grant_type=refresh_token and keeps the rotated refresh token', async () => {
    gh.expiring = true;
    try {
      const { rs, token, loginId } = await signIn();
      const first = await exchange(server.url, rs, token);
      assert.equal(first.status, 200);
      assert.equal(first.body.expires_in, 28800);
      const row = () => server.database.db.prisma.upstreamLogin.findUniqueOrThrow({ where: { id: loginId } });
      const before = await row();
      // Latchkey's own access tokens live an hour: past the upstream expiry, the MCP client holds a newer one from
      // the same sign-in.
      server.clock.advance(28800 - 30);
      const fresh = await freshLatchkeyToken(loginId, rs);
      const answer = await exchange(server.url, rs, fresh);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.notEqual(answer.body.access_token, first.body.access_token);
      assert.ok(String(answer.body.access_token).startsWith('ghu_'));
      const refresh = gh.recorded('token').at(-1)!;
      assert.equal(refresh.path, '/login/oauth/access_token');
      assert.equal((refresh.body as Record<string, string>).grant_type, 'refresh_token');
      const after = await row();
      assert.notEqual(after.refreshTokenEnc, before.refreshTokenEnc, 'the rotated refresh token is stored');
      assert.ok(after.refreshExpiresAt, 'refresh_token_expires_in is kept');
      // The stored refresh token is the one GitHub issued last: the next refresh works.
      server.clock.advance(28800);
      const again = await exchange(server.url, rs, await freshLatchkeyToken(loginId, rs));
      assert.equal(again.status, 200, JSON.stringify(again.body));
    } finally {
      gh.expiring = false;
    }
  });

  test('GitHub answers a dead refresh token with 200 bad_refresh_token: the sign-in is revoked', async () => {
    gh.expiring = true;
    try {
      const { rs, loginId } = await signIn();
      gh.revokeAll = true;
      server.clock.advance(28800);
      const token = await freshLatchkeyToken(loginId, rs);
      const answer = await exchange(server.url, rs, token);
      assert.equal(answer.status, 400, JSON.stringify(answer.body));
      assert.equal(answer.body.error, 'invalid_grant');
      assert.deepEqual(await introspect(server.url, rs, token), { active: false });
    } finally {
      gh.revokeAll = false;
      gh.expiring = false;
    }
  });

  /** A new Latchkey grant from the same upstream login (a later authorization by the same sign-in). */
  async function freshLatchkeyToken(loginId: string, rs: TestResourceServer): Promise<string> {
    const login = await server.database.db.prisma.upstreamLogin.findUniqueOrThrow({
      where: { id: loginId },
      include: { identity: true },
    });
    const g = await federatedGrant(server, {
      provider: 'github',
      tokens: { accessToken: 'unused', scopes: [] },
      loginId,
      userId: login.identity.userId,
      rs,
      client,
    });
    return g.accessToken;
  }
});
