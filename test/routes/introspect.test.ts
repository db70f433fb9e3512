// /introspect (RFC 7662) and /revoke (RFC 7009): who may ask, what an active answer holds, every inactive case,
// and revocation seen at once by another instance on the same database.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { basicAuth } from '../helpers/basic-auth.ts';
import { DB_KINDS, forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';
import { exchangeCode, obtainCode, postForm as post } from '../helpers/flow.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  startServer,
  type TestClient,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';

function basic(id: string, secret: string) {
  return { authorization: basicAuth(id, secret) };
}

forEachDatabase('/introspect and /revoke', (kind) => {
  let server: TestServer;
  let client: TestClient;
  let rs: TestResourceServer;
  let other: TestResourceServer;
  let email: string;

  before(async () => {
    server = await startServer(kind);
    client = await addClient(server.stores);
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    other = await addResourceServer(server.stores, 'https://other.example.com/mcp');
    email = await addUser(server.stores);
  });
  after(() => server.close());

  async function tokens() {
    const code = await obtainCode(server, client, email, { resource: rs.uri });
    const res = await exchangeCode(server, client, code);
    assert.equal(res.status, 200);
    return res.body as { access_token: string; refresh_token: string };
  }

  const introspect = (token: string, caller: TestResourceServer = rs, extra: Record<string, string> = {}) =>
    post(`${server.url}/introspect`, { token, ...extra }, basic(caller.clientId, caller.clientSecret));

  describe('introspection', () => {
    it('answers an active token with scope, client_id, sub, username, aud, iss, exp, iat and token_type', async () => {
      const t = await tokens();
      const res = await introspect(t.access_token);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const user = await server.stores.users.findByEmail(email);
      const now = Math.floor(server.clock.now().getTime() / 1000);
      assert.deepEqual(res.body, {
        active: true,
        scope: 'mcp',
        client_id: client.clientId,
        sub: user!.id,
        username: email,
        aud: rs.uri,
        iss: server.url,
        exp: now + 3600,
        iat: now,
        token_type: 'Bearer',
      });
      // Answered again from the cache, as bytes serialized once: the same JSON document, typed as JSON.
      for (let i = 0; i < 2; i++) {
        const again = await introspect(t.access_token);
        assert.equal(again.headers.get('content-type'), 'application/json; charset=utf-8');
        assert.equal(again.headers.get('cache-control'), 'no-store');
        assert.deepEqual(again.body, res.body);
      }
    });

    it('accepts client_secret_post caller authentication', async () => {
      const t = await tokens();
      const res = await post(`${server.url}/introspect`, {
        token: t.access_token,
        client_id: rs.clientId,
        client_secret: rs.clientSecret,
      });
      assert.equal(res.body.active, true);
    });

    it('accepts token_type_hint, whatever it says', async () => {
      const t = await tokens();
      for (const hint of ['access_token', 'refresh_token', 'something_else']) {
        assert.equal(
          (await introspect(t.access_token, rs, { token_type_hint: hint })).body.active,
          true,
          hint,
        );
      }
    });

    it('answers {"active": false} and nothing else for a token bound to another resource server', async () => {
      const t = await tokens();
      assert.deepEqual((await introspect(t.access_token, other)).body, { active: false });
    });

    it('answers {"active": false} for unknown, expired, revoked and refresh tokens', async () => {
      assert.deepEqual((await introspect('lk_at_unknown')).body, { active: false });
      assert.deepEqual((await introspect('garbage')).body, { active: false });
      const t = await tokens();
      assert.deepEqual(
        (await introspect(t.refresh_token)).body,
        { active: false },
        'refresh tokens are never active to a resource server',
      );
      const revoked = await tokens();
      await post(`${server.url}/revoke`, { token: revoked.access_token, client_id: client.clientId });
      assert.deepEqual((await introspect(revoked.access_token)).body, { active: false });
      const expiring = await tokens();
      server.clock.advance(3601);
      assert.deepEqual((await introspect(expiring.access_token)).body, { active: false });
    });

    it('answers inactive once the user is disabled', async () => {
      const who = await addUser(server.stores);
      const code = await obtainCode(server, client, who, { resource: rs.uri });
      const t = (await exchangeCode(server, client, code)).body;
      assert.equal((await introspect(String(t.access_token))).body.active, true);
      // Out of band, as `latchkey` commands change things: the change notification reaches the server's cache.
      await server.stores.users.setDisabled(who, true);
      await server.app.latchkey.changes.flush();
      assert.deepEqual((await introspect(String(t.access_token))).body, { active: false });
    });

    it('refuses callers without credentials or with wrong ones (401, RFC 7662 §2.1)', async () => {
      const t = await tokens();
      const none = await post(`${server.url}/introspect`, { token: t.access_token });
      assert.equal(none.status, 401);
      assert.equal(none.body.error, 'invalid_client');
      assert.match(none.headers.get('www-authenticate') ?? '', /^Basic/);
      assert.equal(
        (await post(`${server.url}/introspect`, { token: t.access_token }, basic(rs.clientId, 'wrong')))
          .status,
        401,
      );
      assert.equal(
        (await post(`${server.url}/introspect`, { token: t.access_token }, basic('nobody', rs.clientSecret)))
          .status,
        401,
      );
      // An OAuth client's credentials are not a resource server's.
      const confidential = await addClient(server.stores, { authMethod: 'client_secret_basic' });
      const asClient = await post(
        `${server.url}/introspect`,
        { token: t.access_token },
        basic(confidential.clientId, confidential.clientSecret!),
      );
      assert.equal(asClient.status, 401);
    });

    it('requires the token parameter', async () => {
      const res = await post(`${server.url}/introspect`, {}, basic(rs.clientId, rs.clientSecret));
      assert.equal(res.status, 400);
      assert.equal(res.body.error, 'invalid_request');
    });
  });

  describe('revocation', () => {
    it('revokes an access token alone, and a refresh token with its whole grant', async () => {
      const t = await tokens();
      assert.equal(
        (await post(`${server.url}/revoke`, { token: t.access_token, client_id: client.clientId })).status,
        200,
      );
      assert.equal((await introspect(t.access_token)).body.active, false);
      const t2 = await tokens();
      await post(`${server.url}/revoke`, {
        token: t2.refresh_token,
        token_type_hint: 'refresh_token',
        client_id: client.clientId,
      });
      assert.equal((await introspect(t2.access_token)).body.active, false);
    });

    it('answers 200 for unknown tokens and changes nothing for tokens of another client (RFC 7009 §2.2)', async () => {
      assert.equal(
        (await post(`${server.url}/revoke`, { token: 'lk_at_unknown', client_id: client.clientId })).status,
        200,
      );
      const t = await tokens();
      const stranger = await addClient(server.stores);
      assert.equal(
        (await post(`${server.url}/revoke`, { token: t.access_token, client_id: stranger.clientId })).status,
        200,
      );
      assert.equal((await introspect(t.access_token)).body.active, true);
    });

    it('authenticates the client as at the token endpoint', async () => {
      const confidential = await addClient(server.stores, { authMethod: 'client_secret_post' });
      const res = await post(`${server.url}/revoke`, {
        token: 'x',
        client_id: confidential.clientId,
        client_secret: 'wrong',
      });
      assert.equal(res.status, 401);
      assert.equal(res.body.error, 'invalid_client');
    });
  });
});

describe('revocation across instances [postgres]', { skip: !DB_KINDS.includes('postgres') }, () => {
  let database: TestDatabase;
  let a: TestServer;
  let b: TestServer;

  before(async () => {
    database = await migratedDatabase('postgres');
    a = await startServer('postgres', { database });
    b = await startServer('postgres', { database });
  });
  after(async () => {
    await a.close();
    await b.close();
    await database.cleanup();
  });

  it('a token revoked on one instance reads inactive on the very next call to another', async () => {
    const client = await addClient(a.stores);
    const rs = await addResourceServer(a.stores, 'https://mcp.example.com/mcp');
    const email = await addUser(a.stores);
    const code = await obtainCode(a, client, email);
    const t = (await exchangeCode(a, client, code)).body;
    const ask = (s: TestServer) =>
      post(`${s.url}/introspect`, { token: String(t.access_token) }, basic(rs.clientId, rs.clientSecret));
    assert.equal((await ask(b)).body.active, true);
    assert.equal((await ask(b)).body.active, true);
    await post(`${a.url}/revoke`, { token: String(t.access_token), client_id: client.clientId });
    assert.deepEqual((await ask(b)).body, { active: false });
  });
});
