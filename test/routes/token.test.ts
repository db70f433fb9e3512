// /token: the code exchange and refresh rotation, every error branch, and the concurrency rules
// (RFC 6749 §4.1.3, §5.2, §6; RFC 7636 §4.6; RFC 9700 §2.2.2, §4.14; OAuth 2.1 §4.3.1).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashSecret } from '../../src/lib/crypto.ts';
import { basicAuth } from '../helpers/basic-auth.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { exchangeCode, obtainCode, refreshToken, tokenRequest, VERIFIER } from '../helpers/flow.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  introspect,
  startServer,
  type TestClient,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';

forEachDatabase('/token', (kind) => {
  let server: TestServer;
  let client: TestClient;
  let rs: TestResourceServer;
  let email: string;

  before(async () => {
    server = await startServer(kind, { env: { REFRESH_REUSE_WINDOW: '60' } });
    client = await addClient(server.stores);
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    email = await addUser(server.stores);
  });
  after(() => server.close());

  async function tokens(c: TestClient = client) {
    const code = await obtainCode(server, c, email);
    const res = await exchangeCode(server, c, code);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as { access_token: string; refresh_token: string; scope: string };
  }

  async function isActive(token: string) {
    return (await introspect(server.url, rs, token)).active === true;
  }

  describe('authorization_code', () => {
    it('answers with Bearer tokens, expires_in, scope and Cache-Control: no-store', async () => {
      const code = await obtainCode(server, client, email);
      const res = await exchangeCode(server, client, code, { resource: rs.uri });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.equal(res.body.token_type, 'Bearer');
      assert.equal(res.body.expires_in, 3600);
      assert.equal(res.body.scope, 'mcp');
      assert.match(String(res.body.access_token), /^lk_at_/);
      assert.match(String(res.body.refresh_token), /^lk_rt_/);
    });

    it('refuses a second use of a code and revokes every token issued from it (RFC 6749 §4.1.2)', async () => {
      const code = await obtainCode(server, client, email);
      const first = await exchangeCode(server, client, code);
      assert.equal(first.status, 200);
      assert.ok(await isActive(String(first.body.access_token)));
      const second = await exchangeCode(server, client, code);
      assert.equal(second.status, 400);
      assert.equal(second.body.error, 'invalid_grant');
      assert.equal(await isActive(String(first.body.access_token)), false);
      const refreshed = await refreshToken(server, client, String(first.body.refresh_token));
      assert.equal(refreshed.body.error, 'invalid_grant');
    });

    it('refuses a code_verifier that does not match the challenge (RFC 7636 §4.6), and the code is spent', async () => {
      const code = await obtainCode(server, client, email);
      const bad = await exchangeCode(server, client, code, { code_verifier: 'x'.repeat(43) });
      assert.equal(bad.body.error, 'invalid_grant');
      const retry = await exchangeCode(server, client, code);
      assert.equal(retry.body.error, 'invalid_grant');
    });

    it('requires code_verifier', async () => {
      const code = await obtainCode(server, client, email);
      const res = await tokenRequest(server, {
        grant_type: 'authorization_code',
        code,
        client_id: client.clientId,
        redirect_uri: client.redirectUri,
      });
      assert.equal(res.status, 400);
      assert.equal(res.body.error, 'invalid_request');
    });

    it('refuses a redirect_uri different from the authorization request', async () => {
      const code = await obtainCode(server, client, email);
      const res = await exchangeCode(server, client, code, { redirect_uri: 'http://127.0.0.1:9/other' });
      assert.equal(res.body.error, 'invalid_grant');
    });

    it('refuses a resource different from the authorization request (RFC 8707 §2.2)', async () => {
      await addResourceServer(server.stores, 'https://other.example.com/mcp');
      try {
        const code = await obtainCode(server, client, email, { resource: rs.uri });
        const res = await exchangeCode(server, client, code, { resource: 'https://other.example.com/mcp' });
        assert.equal(res.body.error, 'invalid_target');
        const code2 = await obtainCode(server, client, email, { resource: rs.uri });
        const unknown = await exchangeCode(server, client, code2, {
          resource: 'https://unknown.example.com/mcp',
        });
        assert.equal(unknown.body.error, 'invalid_target');
      } finally {
        await server.stores.resourceServers.delete('https://other.example.com/mcp');
      }
    });

    it('refuses an expired code (CODE_TTL)', async () => {
      const code = await obtainCode(server, client, email);
      server.clock.advance(601);
      const res = await exchangeCode(server, client, code);
      assert.equal(res.body.error, 'invalid_grant');
      assert.match(String(res.body.error_description), /expired/);
    });

    it('refuses a code issued to another client', async () => {
      const other = await addClient(server.stores);
      const code = await obtainCode(server, client, email);
      const res = await exchangeCode(server, other, code);
      assert.equal(res.body.error, 'invalid_grant');
    });

    it('refuses an unknown code', async () => {
      const res = await exchangeCode(server, client, 'lk_code_nonsense');
      assert.equal(res.body.error, 'invalid_grant');
    });

    it('gives exactly one success to N concurrent exchanges of one code', async () => {
      const code = await obtainCode(server, client, email);
      const results = await Promise.all(Array.from({ length: 8 }, () => exchangeCode(server, client, code)));
      assert.equal(results.filter((r) => r.status === 200).length, 1);
      assert.ok(results.filter((r) => r.status !== 200).every((r) => r.body.error === 'invalid_grant'));
    });
  });

  describe('client authentication', () => {
    it('authenticates client_secret_post and client_secret_basic clients as registered', async () => {
      for (const method of ['client_secret_post', 'client_secret_basic'] as const) {
        const c = await addClient(server.stores, { authMethod: method });
        const code = await obtainCode(server, c, email);
        const params = {
          grant_type: 'authorization_code',
          code,
          code_verifier: VERIFIER,
          redirect_uri: c.redirectUri,
        };
        const res =
          method === 'client_secret_post'
            ? await tokenRequest(server, { ...params, client_id: c.clientId, client_secret: c.clientSecret! })
            : await tokenRequest(server, params, { authorization: basicAuth(c.clientId, c.clientSecret!) });
        assert.equal(res.status, 200, `${method}: ${JSON.stringify(res.body)}`);
      }
    });

    it('answers a wrong secret with 401 invalid_client, and a Basic challenge when Basic was used', async () => {
      const post = await addClient(server.stores, { authMethod: 'client_secret_post' });
      const r1 = await tokenRequest(server, {
        grant_type: 'refresh_token',
        refresh_token: 'x',
        client_id: post.clientId,
        client_secret: 'wrong',
      });
      assert.equal(r1.status, 401);
      assert.equal(r1.body.error, 'invalid_client');
      const b = await addClient(server.stores, { authMethod: 'client_secret_basic' });
      const r2 = await tokenRequest(
        server,
        { grant_type: 'refresh_token', refresh_token: 'x' },
        { authorization: basicAuth(b.clientId, 'wrong') },
      );
      assert.equal(r2.status, 401);
      assert.match(r2.headers.get('www-authenticate') ?? '', /^Basic /);
    });

    it('refuses a method other than the registered one', async () => {
      const b = await addClient(server.stores, { authMethod: 'client_secret_basic' });
      const res = await tokenRequest(server, {
        grant_type: 'refresh_token',
        refresh_token: 'x',
        client_id: b.clientId,
        client_secret: b.clientSecret!,
      });
      assert.equal(res.status, 401);
      const pub = await tokenRequest(server, {
        grant_type: 'refresh_token',
        refresh_token: 'x',
        client_id: b.clientId,
      });
      assert.equal(pub.status, 401);
    });

    it('refuses an unknown client and a missing client_id with 401 invalid_client', async () => {
      assert.equal(
        (await tokenRequest(server, { grant_type: 'refresh_token', refresh_token: 'x', client_id: 'nobody' }))
          .status,
        401,
      );
      assert.equal(
        (await tokenRequest(server, { grant_type: 'refresh_token', refresh_token: 'x' })).status,
        401,
      );
    });
  });

  describe('request format', () => {
    it('refuses an unsupported grant_type', async () => {
      const res = await tokenRequest(server, { grant_type: 'password', client_id: client.clientId });
      assert.equal(res.body.error, 'unsupported_grant_type');
    });

    it('refuses a grant type the client did not register (unauthorized_client)', async () => {
      const noRefresh = await addClient(server.stores, { grantTypes: ['authorization_code'] });
      const res = await refreshToken(server, noRefresh, 'lk_rt_x');
      assert.equal(res.body.error, 'unauthorized_client');
    });

    it('refuses a JSON body', async () => {
      const res = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'refresh_token' }),
      });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
      assert.equal(res.headers.get('cache-control'), 'no-store');
    });

    it('refuses repeated parameters', async () => {
      const body = new URLSearchParams([
        ['grant_type', 'refresh_token'],
        ['grant_type', 'refresh_token'],
        ['client_id', client.clientId],
      ]);
      const res = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_request');
    });
  });

  describe('refresh_token', () => {
    it('rotates on every use: the new pair works, the old refresh token is spent', async () => {
      const t = await tokens();
      const r = await refreshToken(server, client, t.refresh_token);
      assert.equal(r.status, 200);
      assert.notEqual(r.body.refresh_token, t.refresh_token);
      assert.ok(await isActive(String(r.body.access_token)));
      const r2 = await refreshToken(server, client, String(r.body.refresh_token));
      assert.equal(r2.status, 200);
    });

    it('may narrow the scope but never widen it, and keeps the resource', async () => {
      const s2 = await startServer(kind, { env: { SCOPES: 'mcp files' } });
      try {
        const c = await addClient(s2.stores);
        const r2 = await addResourceServer(s2.stores, 'https://mcp.example.com/mcp');
        const who = await addUser(s2.stores);
        const code = await obtainCode(s2, c, who, { scope: 'mcp' });
        const t = (await exchangeCode(s2, c, code)).body;
        const wider = await refreshToken(s2, c, String(t.refresh_token), { scope: 'mcp files' });
        assert.equal(wider.body.error, 'invalid_scope');
        const code2 = await obtainCode(s2, c, who, { scope: 'mcp files' });
        const t2 = (await exchangeCode(s2, c, code2)).body;
        const narrow = await refreshToken(s2, c, String(t2.refresh_token), { scope: 'files' });
        assert.equal(narrow.status, 200);
        assert.equal(narrow.body.scope, 'files');
        const info = await introspect(s2.url, r2, String(narrow.body.access_token));
        assert.equal(info.scope, 'files');
        assert.equal(info.aud, r2.uri);
        const full = await refreshToken(s2, c, String(narrow.body.refresh_token));
        assert.equal(full.body.scope, 'mcp files', "the refresh token keeps the grant's scope (RFC 6749 §6)");
      } finally {
        await s2.close();
      }
    });

    it('refuses an expired refresh token (REFRESH_TOKEN_TTL)', async () => {
      const t = await tokens();
      server.clock.advance(2592000 + 1);
      const r = await refreshToken(server, client, t.refresh_token);
      assert.equal(r.body.error, 'invalid_grant');
      assert.match(String(r.body.error_description), /expired/);
    });

    it('refuses a revoked refresh token', async () => {
      const t = await tokens();
      const res = await fetch(`${server.url}/revoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: t.refresh_token, client_id: client.clientId }),
      });
      assert.equal(res.status, 200);
      const r = await refreshToken(server, client, t.refresh_token);
      assert.equal(r.body.error, 'invalid_grant');
      assert.equal(await isActive(t.access_token), false, 'revoking the refresh token revokes its grant');
    });

    it('refuses a refresh token of another client', async () => {
      const t = await tokens();
      const other = await addClient(server.stores);
      const r = await refreshToken(server, other, t.refresh_token);
      assert.equal(r.body.error, 'invalid_grant');
    });

    it('answers two concurrent refreshes with one token with the same pair, and a third inside REFRESH_REUSE_WINDOW too (RFC 9700 §4.14.2)', async () => {
      const t = await tokens();
      const [a, b] = await Promise.all([
        refreshToken(server, client, t.refresh_token),
        refreshToken(server, client, t.refresh_token),
      ]);
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.equal(b.status, 200, JSON.stringify(b.body));
      assert.deepEqual(b.body, a.body, 'one answer, not a second token family');
      assert.equal(b.headers.get('cache-control'), 'no-store');
      server.clock.advance(59);
      const c = await refreshToken(server, client, t.refresh_token);
      assert.equal(c.status, 200, JSON.stringify(c.body));
      assert.deepEqual(c.body, a.body);
      const prisma = server.database.db.prisma;
      const grant = await prisma.refreshToken.findUniqueOrThrow({
        where: { tokenHash: hashSecret(t.refresh_token) },
        select: { grantId: true },
      });
      assert.equal(
        await prisma.refreshToken.count({ where: { grantId: grant.grantId } }),
        2,
        'one rotation: the first token and its one successor',
      );
      assert.ok(await isActive(String(a.body.access_token)));
      const next = await refreshToken(server, client, String(a.body.refresh_token));
      assert.equal(next.status, 200, 'the shared new refresh token keeps working');
    });

    it('answers eight refreshes at once with one token with one pair, and one rotation', async () => {
      const t = await tokens();
      const answers = await Promise.all(
        Array.from({ length: 8 }, () => refreshToken(server, client, t.refresh_token)),
      );
      for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.equal(new Set(answers.map((a) => JSON.stringify(a.body))).size, 1);
      const prisma = server.database.db.prisma;
      const spent = await prisma.refreshToken.findUniqueOrThrow({
        where: { tokenHash: hashSecret(t.refresh_token) },
      });
      const children = await prisma.refreshToken.findMany({ where: { parentId: spent.id } });
      assert.equal(children.length, 1, 'one successor, not eight');
    });

    it('does not hand the kept answer to a holder of another token, nor to another client', async () => {
      const t = await tokens();
      const first = await refreshToken(server, client, t.refresh_token);
      assert.equal(first.status, 200);
      const other = await addClient(server.stores);
      const stolen = await refreshToken(server, other, t.refresh_token);
      assert.equal(stolen.body.error, 'invalid_grant');
      assert.equal(JSON.stringify(stolen.body).includes(String(first.body.access_token)), false);
      assert.ok(await isActive(String(first.body.access_token)), 'a wrong client changes nothing');
    });

    it('revokes the whole grant when a rotated token is replayed after REFRESH_REUSE_WINDOW', async () => {
      const t = await tokens();
      const r = await refreshToken(server, client, t.refresh_token);
      assert.equal(r.status, 200);
      server.clock.advance(61);
      const replay = await refreshToken(server, client, t.refresh_token);
      assert.equal(replay.body.error, 'invalid_grant');
      assert.equal(await isActive(String(r.body.access_token)), false);
      assert.equal(
        (await refreshToken(server, client, String(r.body.refresh_token))).body.error,
        'invalid_grant',
      );
      const grants = await server.database.db.prisma.grant.findMany({
        where: { revokedReason: 'refresh_replay' },
      });
      assert.ok(grants.length >= 1);
    });

    it('answers a replay inside REFRESH_REUSE_WINDOW with the same pair instead of revoking', async () => {
      const t = await tokens();
      const first = await refreshToken(server, client, t.refresh_token);
      server.clock.advance(30);
      const again = await refreshToken(server, client, t.refresh_token);
      assert.equal(again.status, 200);
      assert.deepEqual(again.body, first.body);
      assert.ok(await isActive(String(first.body.access_token)));
    });

    it('drops the kept answer when the grant is revoked by a replay after the window', async () => {
      const t = await tokens();
      const first = await refreshToken(server, client, t.refresh_token);
      assert.equal(first.status, 200);
      const prisma = server.database.db.prisma;
      const spent = await prisma.refreshToken.findUniqueOrThrow({
        where: { tokenHash: hashSecret(t.refresh_token) },
      });
      assert.equal(await prisma.refreshReplay.count({ where: { id: spent.id } }), 1);
      server.clock.advance(61);
      assert.equal((await refreshToken(server, client, t.refresh_token)).body.error, 'invalid_grant');
      assert.equal(await prisma.refreshReplay.count({ where: { id: spent.id } }), 0);
      assert.equal(await isActive(String(first.body.access_token)), false);
    });
  });
});
