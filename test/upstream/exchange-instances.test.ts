// Token exchange across two Latchkey instances on one database (spec federation §6.3, §7; acceptance X7, X8 on both
// instances, S3 key rotation): concurrent exchanges for an expired upstream token cause exactly one upstream refresh,
// against the Plane stand-in (which counts refreshes) and against oidc-provider with refresh-token rotation and reuse
// detection (where a second refresh with the spent token would fail and revoke).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { ManualClock } from '../../src/lib/clock.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';
import {
  allowUpstream,
  exchange,
  federatedGrant,
  oidcProvider,
  oidcTokens,
  planeProvider,
  planeTokens,
  startFederatedServer,
  tokenKey,
} from '../helpers/federated-grants.ts';
import { captureLogs } from '../helpers/log-capture.ts';
import { freePort } from '../helpers/net.ts';
import { PlaneStandin } from '../helpers/plane-standin.ts';
import { introspect, startServer, type TestServer } from '../helpers/server.ts';
import { startUpstreamOidc, type UpstreamOidc } from '../helpers/upstream-oidc.ts';

const PER_INSTANCE = 20;

forEachDatabase('token exchange on two instances', (kind) => {
  let database: TestDatabase;
  let plane: PlaneStandin;
  let op: UpstreamOidc;
  let a: TestServer;
  let b: TestServer;
  const clock = new ManualClock();
  const keys = `${tokenKey('k2')},${tokenKey('k1')}`;

  before(async () => {
    database = await migratedDatabase(kind);
    plane = await PlaneStandin.start();
    plane.addUser();
    plane.expiresIn = 600;
    const portA = await freePort();
    op = await startUpstreamOidc({
      redirectUris: [`http://127.0.0.1:${portA}/login/upstream/corp/callback`],
      rotateRefreshToken: true,
      accessTokenTtl: 600,
    });
    op.accounts.set('alice', { email: 'alice@corp.example', email_verified: true, name: 'Alice' });
    const providers = [planeProvider(plane), oidcProvider(op)];
    a = await startFederatedServer(kind, { providers, keys, database, clock, port: portA });
    b = await startFederatedServer(kind, { providers, keys, database, clock });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await database?.cleanup();
    await plane?.close();
    await op?.close();
  });

  async function concurrently(subject: string, rs: { clientId: string; clientSecret: string }) {
    const started = performance.now();
    const calls = [a, b].flatMap((server) =>
      Array.from({ length: PER_INSTANCE }, () => exchange(server.url, rs, subject)),
    );
    const answers = await Promise.all(calls);
    // Reported, not asserted (no timing assertions on a shared machine).
    console.log(
      `${kind}: ${calls.length} concurrent exchanges took ${Math.round(performance.now() - started)} ms`,
    );
    return answers;
  }

  test('X7: 20 + 20 concurrent exchanges for an expired Plane token: one upstream refresh, one new token', async () => {
    const tokens = await planeTokens(plane, `${a.url}/login/upstream/plane/callback`);
    const g = await federatedGrant(a, { provider: 'plane', tokens });
    await allowUpstream(a, g.rs, { token: ['plane'] });
    await b.app.latchkey.changes.flush();
    clock.advance(600);
    const before = plane.refreshCount;
    const answers = await concurrently(g.accessToken, g.rs);
    for (const x of answers) assert.equal(x.status, 200, JSON.stringify(x.body));
    const issued = new Set(answers.map((x) => x.body.access_token));
    assert.equal(issued.size, 1, 'all 40 got the same token');
    assert.notEqual([...issued][0], tokens.accessToken);
    assert.equal(plane.refreshCount - before, 1, 'exactly one upstream refresh');
  });

  test('X7 (oidc-provider, rotation with reuse detection): one refresh, and the grant stays alive upstream', async () => {
    const tokens = await oidcTokens(op, `${a.url}/login/upstream/corp/callback`, 'alice');
    const g = await federatedGrant(a, {
      provider: 'corp',
      tokens,
      subject: 'alice',
      claims: {
        subject: 'alice',
        email: 'alice@corp.example',
        emailVerified: true,
        name: 'Alice',
        extra: {},
      },
    });
    await allowUpstream(a, g.rs, { token: ['corp'] });
    await b.app.latchkey.changes.flush();
    clock.advance(600);
    const before = op.refreshes.length;
    const answers = await concurrently(g.accessToken, g.rs);
    for (const x of answers) assert.equal(x.status, 200, JSON.stringify(x.body));
    assert.equal(new Set(answers.map((x) => x.body.access_token)).size, 1);
    assert.deepEqual(op.refreshes.slice(before), [{ ok: true }], 'one refresh, and it succeeded');
    // The rotated refresh token works for the next refresh (no reuse was detected).
    clock.advance(600);
    const next = await exchange(b.url, g.rs, g.accessToken);
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.deepEqual(op.refreshes.slice(before), [{ ok: true }, { ok: true }]);
  });

  test('X8 (oidc-provider): the refresh token revoked at the provider’s revocation endpoint ends the sign-in', async () => {
    op.accounts.set('bob', { email: 'bob@corp.example', email_verified: true, name: 'Bob' });
    const tokens = await oidcTokens(op, `${a.url}/login/upstream/corp/callback`, 'bob');
    const g = await federatedGrant(a, {
      provider: 'corp',
      tokens,
      subject: 'bob',
      claims: { sub: 'bob', email: 'bob@corp.example', email_verified: true, name: 'Bob', claims: {} },
    });
    await allowUpstream(a, g.rs, { token: ['corp'] });
    await b.app.latchkey.changes.flush();
    const issuer = new URL(op.issuer);
    const opts = { [oauth.allowInsecureRequests]: true };
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, opts));
    const revoked = await oauth.revocationRequest(
      as,
      { client_id: op.clientId },
      oauth.ClientSecretBasic(op.clientSecret),
      tokens.refreshToken!,
      opts,
    );
    assert.equal(revoked.status, 200);
    clock.advance(600);
    const answer = await exchange(b.url, g.rs, g.accessToken);
    assert.equal(answer.status, 400, JSON.stringify(answer.body));
    assert.equal(answer.body.error, 'invalid_grant');
    assert.equal(op.refreshes.at(-1)?.error, 'invalid_grant');
    assert.deepEqual(await introspect(a.url, g.rs, g.accessToken), { active: false });
  });

  test('X8 on two instances: a revoked upstream sign-in reads inactive on both at once', async () => {
    const tokens = await planeTokens(plane, `${a.url}/login/upstream/plane/callback`);
    const g = await federatedGrant(a, { provider: 'plane', tokens });
    await allowUpstream(a, g.rs, { token: ['plane'], claims: true });
    await b.app.latchkey.changes.flush();
    // Both instances have the active answer cached.
    assert.equal((await introspect(a.url, g.rs, g.accessToken)).active, true);
    assert.equal((await introspect(b.url, g.rs, g.accessToken)).active, true);
    plane.revokeAll = true;
    try {
      clock.advance(600);
      const answer = await exchange(a.url, g.rs, g.accessToken);
      assert.equal(answer.body.error, 'invalid_grant');
    } finally {
      plane.revokeAll = false;
    }
    // The exchange answered only after every instance had heard: no waiting here.
    assert.deepEqual(await introspect(b.url, g.rs, g.accessToken), { active: false });
    assert.deepEqual(await introspect(a.url, g.rs, g.accessToken), { active: false });
  });
});

forEachDatabase('upstream token keys (S3)', (kind) => {
  let database: TestDatabase;
  let plane: PlaneStandin;
  const clock = new ManualClock();
  const k1 = tokenKey('k1');
  const k2 = tokenKey('k2');

  before(async () => {
    database = await migratedDatabase(kind);
    plane = await PlaneStandin.start();
    plane.addUser();
    plane.expiresIn = 600;
  });
  after(async () => {
    await database?.cleanup();
    await plane?.close();
  });

  const start = (keys: string, logger?: ReturnType<typeof captureLogs>['logger']) =>
    startFederatedServer(kind, {
      providers: [planeProvider(plane)],
      keys,
      database,
      clock,
      ...(logger && { logger }),
    });

  test('S3: signed in under k1; with k2,k1 the exchange works and a refresh moves the row to k2; with only k2, 500 naming k1', async () => {
    let server = await start(k1);
    const tokens = await planeTokens(plane, `${server.url}/login/upstream/plane/callback`);
    const g = await federatedGrant(server, { provider: 'plane', tokens });
    const old = await federatedGrant(server, {
      provider: 'plane',
      tokens: await planeTokens(plane, `${server.url}/login/upstream/plane/callback`),
    });
    await allowUpstream(server, g.rs, { token: ['plane'] });
    await allowUpstream(server, old.rs, { token: ['plane'] });
    const row = () => database.db.prisma.upstreamLogin.findUniqueOrThrow({ where: { id: g.loginId } });
    assert.equal((await row()).keyId, 'k1');
    await server.close();

    server = await start(`${k2},${k1}`);
    try {
      const same = await exchange(server.url, g.rs, g.accessToken);
      assert.equal(same.status, 200);
      assert.equal(same.body.access_token, tokens.accessToken);
      clock.advance(600);
      const refreshed = await exchange(server.url, g.rs, g.accessToken);
      assert.equal(refreshed.status, 200);
      assert.equal((await row()).keyId, 'k2');
    } finally {
      await server.close();
    }

    const logs = captureLogs();
    server = await start(k2, logs.logger);
    try {
      // `old` was never refreshed: still under k1, which is gone.
      const answer = await exchange(server.url, old.rs, old.accessToken);
      assert.equal(answer.status, 500);
      assert.equal(answer.body.error, 'server_error');
      assert.ok(logs.atLeast(50).some((l) => l.kid === 'k1' && l.rowId === old.loginId));
      const moved = await exchange(server.url, g.rs, g.accessToken);
      assert.equal(moved.status, 200, 'the row moved to k2 still works');
    } finally {
      await server.close();
    }

    // Plane taken out of the configuration: exchanges answer invalid_grant, and nothing is revoked (a typo must not
    // sign everyone out); Plane back, the same sign-in works again.
    const other = {
      id: 'corp',
      type: 'oauth2',
      name: 'Corp',
      client_id: 'c',
      client_secret: 's',
      scopes: ['x'],
    };
    const endpoints = {
      authorization_endpoint: 'https://sso.example.com/a',
      token_endpoint: 'https://sso.example.com/t',
    };
    const withoutPlane = captureLogs();
    server = await startFederatedServer(kind, {
      providers: [{ ...other, ...endpoints, userinfo_endpoint: 'https://sso.example.com/u' }],
      keys: k2,
      database,
      clock,
      logger: withoutPlane.logger,
    });
    try {
      const gone = await exchange(server.url, g.rs, g.accessToken);
      assert.equal(gone.status, 400);
      assert.deepEqual(gone.body, {
        error: 'invalid_grant',
        error_description: 'the upstream provider is no longer configured',
      });
      assert.ok(withoutPlane.lines.some((l) => l.level === 40 && l.provider === 'plane'));
      assert.equal((await row()).revokedAt, null);
    } finally {
      await server.close();
    }
    server = await start(k2);
    try {
      assert.equal((await exchange(server.url, g.rs, g.accessToken)).status, 200);
    } finally {
      await server.close();
    }
  });
});

forEachDatabase('token exchange without providers', (kind) => {
  test('the grant type is neither advertised nor accepted', async () => {
    const server = await startServer(kind);
    try {
      const meta = (await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json()) as {
        grant_types_supported: string[];
      };
      assert.ok(!meta.grant_types_supported.includes('urn:ietf:params:oauth:grant-type:token-exchange'));
      const r = await exchange(server.url, { clientId: 'x', clientSecret: 'y' }, 'lk_at_x');
      assert.equal(r.status, 401, 'treated as any unknown grant: the caller is not a client');
    } finally {
      await server.close();
    }
  });
});
