// Token exchange for the upstream access token (spec federation §6.2, §6.3, §7; acceptance X1–X6, X8–X12, S2),
// against the Plane stand-in, on both databases. Each test makes its own federated grant; time moves with the
// ManualClock (the upstream tokens stay valid for real).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { basicAuth } from '../helpers/basic-auth.ts';
import { FormBrowser, parseForms } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import {
  ACCESS_TOKEN_TYPE,
  allowUpstream,
  databaseText,
  exchange,
  type FederatedGrant,
  federatedGrant,
  planeProvider,
  planeTokens,
  startFederatedServer,
} from '../helpers/federated-grants.ts';
import { authorizeUrl, exchangeCode, obtainCode, postForm, refreshToken } from '../helpers/flow.ts';
import { captureLogs } from '../helpers/log-capture.ts';
import { PlaneStandin } from '../helpers/plane-standin.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  introspect,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';

// The stand-in's token lifetime: shorter than Latchkey's own access tokens (3600 s), so moving past it keeps them.
const UPSTREAM_TTL = 600;

forEachDatabase('token exchange', (kind) => {
  let plane: PlaneStandin;
  let server: TestServer;
  let callback: string;
  const logs = captureLogs('info');

  before(async () => {
    plane = await PlaneStandin.start();
    plane.addUser({ email: 'john@acme.example' });
    plane.expiresIn = UPSTREAM_TTL;
    server = await startFederatedServer(kind, {
      providers: [planeProvider(plane)],
      logger: logs.logger,
      env: { UPSTREAM_HTTP_TIMEOUT: '2' },
    });
    callback = `${server.url}/login/upstream/plane/callback`;
  });
  after(async () => {
    await server?.close();
    await plane?.close();
  });

  /** A grant from a fresh Plane sign-in, its resource server allowed the Plane token. */
  async function planeGrant(
    options: { allowed?: boolean } = {},
  ): Promise<FederatedGrant & { upstream: string }> {
    const tokens = await planeTokens(plane, callback);
    const g = await federatedGrant(server, { provider: 'plane', tokens });
    if (options.allowed !== false) await allowUpstream(server, g.rs, { token: ['plane'] });
    return { ...g, upstream: tokens.accessToken };
  }

  async function loginRow(id: string) {
    const row = await server.database.db.prisma.upstreamLogin.findUnique({ where: { id } });
    assert.ok(row);
    return row;
  }

  test('X1: a resource server without upstream_token is unauthorized_client; with it, the RFC 8693 answer', async () => {
    const g = await planeGrant({ allowed: false });
    const refused = await exchange(server.url, g.rs, g.accessToken);
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'unauthorized_client');

    await allowUpstream(server, g.rs, { token: ['plane'] });
    const linesBefore = logs.lines.length;
    const ok = await exchange(server.url, g.rs, g.accessToken, { requested_token_type: ACCESS_TOKEN_TYPE });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.headers.get('cache-control'), 'no-store');
    assert.deepEqual(Object.keys(ok.body).sort(), [
      'access_token',
      'expires_in',
      'issued_token_type',
      'scope',
      'token_type',
    ]);
    assert.equal(ok.body.access_token, g.upstream);
    assert.equal(ok.body.issued_token_type, ACCESS_TOKEN_TYPE);
    assert.equal(ok.body.token_type, 'Bearer');
    assert.equal(ok.body.expires_in, UPSTREAM_TTL);
    assert.equal(ok.body.scope, 'read write');
    // As quiet as /introspect: the routine answer is not logged at info, not even on arrival.
    const reqId = ok.headers.get('x-request-id');
    assert.ok(reqId);
    assert.deepEqual(
      logs.lines.slice(linesBefore).filter((l) => l.reqId === reqId || l.route === '/token'),
      [],
    );
    // Advertised because a provider is configured.
    const meta = (await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json()) as {
      grant_types_supported: string[];
    };
    assert.ok(meta.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:token-exchange'));
  });

  test('X2: another resource server’s token, an expired, a revoked, a refresh token or garbage: one invalid_grant', async () => {
    const g = await planeGrant();
    const other = await planeGrant();
    const answers = [
      await exchange(server.url, g.rs, other.accessToken),
      await exchange(server.url, g.rs, g.refreshToken),
      await exchange(server.url, g.rs, 'lk_at_garbage'),
      await exchange(server.url, g.rs, 'garbage'),
    ];
    const revoked = await planeGrant();
    const r = await postForm(`${server.url}/revoke`, {
      token: revoked.accessToken,
      client_id: revoked.client.clientId,
    });
    assert.equal(r.status, 200);
    answers.push(await exchange(server.url, revoked.rs, revoked.accessToken));
    const expiring = await planeGrant();
    server.clock.advance(3601); // past ACCESS_TOKEN_TTL
    answers.push(await exchange(server.url, expiring.rs, expiring.accessToken));
    for (const a of answers) {
      assert.equal(a.status, 400);
      assert.deepEqual(a.body, {
        error: 'invalid_grant',
        error_description: 'the subject token is not active',
      });
    }
  });

  test('X3: bad resource server credentials, or an MCP client’s credentials: 401 invalid_client with a challenge', async () => {
    const g = await planeGrant();
    const bad = await exchange(server.url, { clientId: g.rs.clientId, clientSecret: 'wrong' }, g.accessToken);
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error, 'invalid_client');
    assert.match(bad.headers.get('www-authenticate') ?? '', /^Basic /);
    const mcpClient = await addClient(server.stores, { authMethod: 'client_secret_basic' });
    const asClient = await exchange(
      server.url,
      { clientId: mcpClient.clientId, clientSecret: mcpClient.clientSecret! },
      g.accessToken,
    );
    assert.equal(asClient.status, 401);
    assert.equal(asClient.body.error, 'invalid_client');
    const none = await postForm(`${server.url}/token`, {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: g.accessToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
    });
    assert.equal(none.status, 401);
    // client_secret_post works like Basic.
    const post = await postForm(`${server.url}/token`, {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: g.accessToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      client_id: g.rs.clientId,
      client_secret: g.rs.clientSecret,
    });
    assert.equal(post.status, 200);
  });

  test('X4: a grant from a password session has no upstream sign-in behind it', async () => {
    const rs = await addResourceServer(server.stores, 'http://127.0.0.1:9/mcp-password');
    await allowUpstream(server, rs, { token: ['plane'] });
    const client = await addClient(server.stores);
    const email = await addUser(server.stores);
    const code = await obtainCode(server, client, email, { resource: rs.uri });
    const t = await exchangeCode(server, client, code, { resource: rs.uri });
    const answer = await exchange(server.url, rs, String(t.body.access_token));
    assert.equal(answer.status, 400);
    assert.deepEqual(answer.body, {
      error: 'invalid_grant',
      error_description: 'no upstream sign-in is behind this token',
    });
  });

  test('X5: a wrong audience is invalid_target; a wrong subject or requested token type is invalid_request', async () => {
    const g = await planeGrant();
    const target = await exchange(server.url, g.rs, g.accessToken, { audience: 'github' });
    assert.equal(target.status, 400);
    assert.equal(target.body.error, 'invalid_target');
    assert.equal((await exchange(server.url, g.rs, g.accessToken, { audience: 'plane' })).status, 200);
    for (const extra of <Record<string, string>[]>[
      { subject_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' },
      { requested_token_type: 'urn:ietf:params:oauth:token-type:id_token' },
      { subject_token_type: '' },
    ]) {
      const a = await exchange(server.url, g.rs, g.accessToken, extra);
      assert.equal(a.status, 400, JSON.stringify(extra));
      assert.equal(a.body.error, 'invalid_request');
    }
  });

  test('X6: an expired upstream token is refreshed once; rotation replaces the stored refresh token, else it is kept', async () => {
    const cipher = server.app.latchkey.upstream.cipher;
    const refreshOf = async (loginId: string) =>
      cipher.decrypt((await loginRow(loginId)).refreshTokenEnc!, {
        table: 'upstream_logins',
        column: 'refresh_token_enc',
        rowId: loginId,
      });
    for (const rotation of [true, false]) {
      plane.rotation = rotation;
      const g = await planeGrant();
      const before = await refreshOf(g.loginId);
      const refreshes = plane.refreshCount;
      server.clock.advance(UPSTREAM_TTL - 30); // within 60 s of the upstream expiry: not fresh
      const first = await exchange(server.url, g.rs, g.accessToken);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.notEqual(first.body.access_token, g.upstream);
      assert.equal(plane.refreshCount, refreshes + 1);
      const again = await exchange(server.url, g.rs, g.accessToken);
      assert.equal(
        again.body.access_token,
        first.body.access_token,
        'the refreshed token is stored and reused',
      );
      assert.equal(plane.refreshCount, refreshes + 1);
      const after = await refreshOf(g.loginId);
      if (rotation) assert.notEqual(after, before);
      else assert.equal(after, before);
      const sent = plane.recorded('token').at(-1)!.body as Record<string, string>;
      assert.equal(sent.grant_type, 'refresh_token');
      assert.equal(sent.scope, undefined, 'no scope on refresh');
      assert.equal(sent.client_secret, plane.clientSecret, 'client_secret_post for Plane');
    }
    plane.rotation = true;
  });

  test('X8: the upstream refuses the refresh (invalid_grant): every grant of that sign-in, its session and refresh die', async () => {
    const g = await planeGrant();
    // A second grant (another client, another resource server) from the same sign-in, and a session from it.
    const second = await federatedGrant(server, {
      provider: 'plane',
      tokens: { accessToken: 'unused', scopes: [] },
      loginId: g.loginId,
      userId: g.userId,
    });
    const life = { idleTtl: 3600, absoluteTtl: 7200 };
    const session = await server.stores.sessions.create(
      g.userId,
      server.clock.now(),
      life,
      'test',
      g.loginId,
    );
    assert.equal((await introspect(server.url, second.rs, second.accessToken)).active, true);
    // Control: while the sign-in lives, that session goes straight to the consent page.
    const browser = new FormBrowser(server.url);
    browser.cookies.set('latchkey_session', session);
    const consent = await browser.request(authorizeUrl(server, second.client, { resource: second.rs.uri }));
    assert.ok(
      parseForms(consent.html).some((f) => f.action === '/authorize'),
      'the consent page',
    );

    plane.revokeAll = true;
    try {
      server.clock.advance(UPSTREAM_TTL);
      const answer = await exchange(server.url, g.rs, g.accessToken);
      assert.equal(answer.status, 400);
      assert.deepEqual(answer.body, {
        error: 'invalid_grant',
        error_description: 'the upstream authorization was revoked; sign in again',
      });
    } finally {
      plane.revokeAll = false;
    }
    const login = await loginRow(g.loginId);
    assert.ok(login.revokedAt);
    assert.equal(login.revokedReason, 'upstream_invalid_grant');
    assert.deepEqual(await introspect(server.url, g.rs, g.accessToken), { active: false });
    assert.deepEqual(await introspect(server.url, second.rs, second.accessToken), { active: false });
    const refreshed = await refreshToken(server, second.client, second.refreshToken);
    assert.equal(refreshed.body.error, 'invalid_grant');
    assert.equal(await server.stores.sessions.findLive(session, server.clock.now(), life), null);
    // The browser holding that session is asked to sign in again at the next /authorize.
    const next = await browser.request(authorizeUrl(server, second.client, { resource: second.rs.uri }));
    assert.equal(next.status, 200);
    assert.ok(
      parseForms(next.html).some((f) => f.action === '/login' || f.action.startsWith('/login/upstream/')),
    );
    assert.ok(
      !parseForms(next.html).some((f) => f.action === '/authorize'),
      'no consent page without a session',
    );
    const grants = await server.database.db.prisma.grant.findMany({ where: { upstreamLoginId: g.loginId } });
    assert.equal(grants.length, 2);
    for (const grant of grants) assert.equal(grant.revokedReason, 'upstream_revoked');
  });

  test('X9: the upstream is down during the refresh: 503 with Retry-After, nothing revoked, then it recovers', async () => {
    const g = await planeGrant();
    server.clock.advance(UPSTREAM_TTL);
    await plane.setDown(true);
    try {
      const down = await exchange(server.url, g.rs, g.accessToken);
      assert.equal(down.status, 503);
      assert.equal(down.body.error, 'temporarily_unavailable');
      assert.equal(down.headers.get('retry-after'), '5');
      plane.faults.status5xx = 502;
      await plane.setDown(false);
      const bad = await exchange(server.url, g.rs, g.accessToken);
      assert.equal(bad.status, 503, 'a 5xx is unavailable too');
      plane.faults.status5xx = false;
      // A refresh that gets no answer within UPSTREAM_HTTP_TIMEOUT (2 s here) is unavailable too.
      plane.faults.slow = ['token'];
      const slow = await exchange(server.url, g.rs, g.accessToken);
      assert.equal(slow.status, 503);
      assert.equal(slow.headers.get('retry-after'), '5');
    } finally {
      plane.faults.slow = false;
      plane.host.dropHeld();
      plane.faults.status5xx = false;
      await plane.setDown(false);
    }
    assert.equal((await loginRow(g.loginId)).revokedAt, null);
    assert.equal((await loginRow(g.loginId)).refreshLeaseHolder, null, 'the lease was let go');
    assert.equal((await introspect(server.url, g.rs, g.accessToken)).active, true);
    const ok = await exchange(server.url, g.rs, g.accessToken);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.notEqual(ok.body.access_token, g.upstream);
  });

  test('X10: no refresh token and an expired access token: invalid_grant, and the grants are revoked', async () => {
    const tokens = await planeTokens(plane, callback);
    const g = await federatedGrant(server, {
      provider: 'plane',
      tokens: { accessToken: tokens.accessToken, expiresIn: UPSTREAM_TTL, scopes: tokens.scopes },
    });
    await allowUpstream(server, g.rs, { token: ['plane'] });
    assert.equal((await exchange(server.url, g.rs, g.accessToken)).status, 200);
    server.clock.advance(UPSTREAM_TTL);
    const refreshes = plane.refreshCount;
    const answer = await exchange(server.url, g.rs, g.accessToken);
    assert.equal(answer.status, 400);
    assert.deepEqual(answer.body, {
      error: 'invalid_grant',
      error_description: 'the upstream sign-in has expired; sign in again',
    });
    assert.equal(plane.refreshCount, refreshes, 'nothing to refresh with: no upstream call');
    assert.equal((await loginRow(g.loginId)).revokedReason, 'upstream_expired');
    assert.deepEqual(await introspect(server.url, g.rs, g.accessToken), { active: false });
  });

  test('X11: invalid_client at the upstream (its secret changed): 500, nothing revoked, an error logged', async () => {
    const g = await planeGrant();
    server.clock.advance(UPSTREAM_TTL);
    const secret = plane.clientSecret;
    plane.clientSecret = 'rotated-at-plane';
    try {
      const answer = await exchange(server.url, g.rs, g.accessToken);
      assert.equal(answer.status, 500);
      assert.equal(answer.body.error, 'server_error');
    } finally {
      plane.clientSecret = secret;
    }
    assert.equal((await loginRow(g.loginId)).revokedAt, null);
    assert.equal((await introspect(server.url, g.rs, g.accessToken)).active, true);
    const logged = logs.atLeast(50).find((l) => l.loginId === g.loginId);
    assert.ok(logged, 'an error line names the login');
    assert.match(String(logged.msg), /client_id\/client_secret/);
  });

  test('X12: the lease of a crashed holder is taken over', async () => {
    const g = await planeGrant();
    server.clock.advance(UPSTREAM_TTL);
    await server.database.db.prisma.upstreamLogin.update({
      where: { id: g.loginId },
      data: {
        refreshLeaseHolder: 'crashed-instance',
        refreshLeaseUntil: new Date(server.clock.now().getTime() - 1000),
      },
    });
    const answer = await exchange(server.url, g.rs, g.accessToken);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.notEqual(answer.body.access_token, g.upstream);
    const row = await loginRow(g.loginId);
    assert.equal(row.refreshLeaseHolder, null);
  });

  test('takes no lease on a login another instance refreshed after it was read: no second refresh with a rotated token', async () => {
    // The race CI met once in X7: instance B reads the expired login, instance A takes the lease, refreshes and
    // lets the lease go, and only then does B try for the lease with what it read (the upstream has rotated the
    // refresh token B holds, so a refresh by B would be refused and end the sign-in).
    const g = await planeGrant();
    const tokens = server.stores.upstreamTokens;
    const seen = await tokens.findLogin(g.loginId);
    assert.ok(seen);
    const now = server.clock.now();
    const until = new Date(now.getTime() + 15_000);
    assert.equal(await tokens.takeLease(g.loginId, 'instance-a', until, now, seen.accessTokenEnc), true);
    const refreshed = await tokens.storeRefreshed(g.loginId, 'instance-a', {
      accessTokenEnc: `${seen.accessTokenEnc}-refreshed`,
      refreshTokenEnc: seen.refreshTokenEnc,
      keyId: seen.keyId,
      accessExpiresAt: new Date(now.getTime() + UPSTREAM_TTL * 1000),
      refreshExpiresAt: seen.refreshExpiresAt,
      scopes: seen.scopes,
      refreshedAt: now,
    });
    assert.equal(refreshed, true);
    assert.equal(await tokens.takeLease(g.loginId, 'instance-b', until, now, seen.accessTokenEnc), false);
    const row = await loginRow(g.loginId);
    assert.equal(row.refreshLeaseHolder, null, 'the lease stays free');
    // What B reads now is the refreshed version, and with it the lease can be taken.
    assert.equal(await tokens.takeLease(g.loginId, 'instance-b', until, now, row.accessTokenEnc), true);
  });

  test('S2: a ciphertext moved to another column or row does not decrypt: 500, nothing revoked', async () => {
    const a = await planeGrant();
    const b = await planeGrant();
    const prisma = server.database.db.prisma;
    const rowA = await loginRow(a.loginId);
    // The refresh token's ciphertext put in the access token column of the same row.
    await prisma.upstreamLogin.update({
      where: { id: a.loginId },
      data: { accessTokenEnc: rowA.refreshTokenEnc! },
    });
    // Another row's access token ciphertext.
    await prisma.upstreamLogin.update({
      where: { id: b.loginId },
      data: { accessTokenEnc: rowA.accessTokenEnc },
    });
    for (const g of [a, b]) {
      const answer = await exchange(server.url, g.rs, g.accessToken);
      assert.equal(answer.status, 500);
      assert.equal(answer.body.error, 'server_error');
      assert.equal((await loginRow(g.loginId)).revokedAt, null);
      assert.equal((await introspect(server.url, g.rs, g.accessToken)).active, true);
    }
    const logged = logs
      .atLeast(50)
      .filter((l) => l.table === 'upstream_logins' && l.column === 'access_token_enc');
    assert.ok(logged.some((l) => l.rowId === b.loginId && l.kid === 'k1'));
  });

  test('never a 500 for bad input at /token with the exchange grant', async () => {
    const rs: TestResourceServer = await addResourceServer(server.stores, 'http://127.0.0.1:9/mcp-bad-input');
    const auth = { authorization: basicAuth(rs.clientId, rs.clientSecret) };
    for (const body of <Record<string, string>[]>[
      { grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange' },
      { grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: 'x' },
      {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: 'lk_at_'.padEnd(5000, 'x'),
        subject_token_type: ACCESS_TOKEN_TYPE,
        audience: '\u0000',
      },
    ]) {
      const r = await postForm(`${server.url}/token`, body, auth);
      assert.ok(r.status === 400, `${r.status} ${JSON.stringify(r.body)}`);
    }
  });

  test('after every exchange and refresh above: no upstream token in any table or log line', async () => {
    const secrets = [...plane.issuedAccessTokens, ...plane.refreshTokens.keys(), plane.clientSecret];
    assert.ok(secrets.length > 20, 'the tests above issued and refreshed tokens');
    const dump = await databaseText(server);
    assert.ok(dump.includes('upstream_invalid_grant'), 'the dump is real');
    for (const s of secrets) {
      assert.equal(dump.includes(s), false, `an upstream secret (${s.slice(0, 12)}…) is stored in plaintext`);
      assert.ok(!logs.raw.some((line) => line.includes(s)), 'an upstream secret was logged');
    }
  });
});
