// Rules the grant handlers own at /token (src/oauth/grants/), beyond test/routes/token.test.ts: the `resource`
// decision (an unknown resource is answered exactly as another registered one), and bookkeeping after tokens
// are committed never costing the client its tokens.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { forEachDatabase } from '../helpers/db.ts';
import { exchangeCode, obtainCode, refreshToken } from '../helpers/flow.ts';
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

forEachDatabase('/token grant rules', (kind) => {
  let server: TestServer;
  let client: TestClient;
  let rs: TestResourceServer;
  let email: string;

  before(async () => {
    server = await startServer(kind);
    client = await addClient(server.stores);
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    await addResourceServer(server.stores, 'https://other.example.com/mcp');
    email = await addUser(server.stores);
  });
  after(() => server.close());

  const mismatched = 'https://other.example.com/mcp';
  const unknown = 'https://unknown.example.com/mcp';

  for (const [label, resource] of [
    ['another registered resource', mismatched],
    ['an unknown resource', unknown],
  ] as const) {
    it(`answers ${label} at code exchange with invalid_target, and the code is spent (RFC 8707 §2.2)`, async () => {
      const code = await obtainCode(server, client, email, { resource: rs.uri });
      const res = await exchangeCode(server, client, code, { resource });
      assert.equal(res.status, 400);
      assert.deepEqual(res.body, {
        error: 'invalid_target',
        error_description: 'resource does not match the authorization request',
      });
      const retry = await exchangeCode(server, client, code, { resource: rs.uri });
      assert.equal(retry.body.error, 'invalid_grant');
    });

    it(`answers ${label} at refresh with invalid_target, and the refresh token still works`, async () => {
      const code = await obtainCode(server, client, email, { resource: rs.uri });
      const tokens = await exchangeCode(server, client, code, { resource: rs.uri });
      const rt = String(tokens.body.refresh_token);
      const res = await refreshToken(server, client, rt, { resource });
      assert.deepEqual(res.body, {
        error: 'invalid_target',
        error_description: 'resource does not match the grant',
      });
      const ok = await refreshToken(server, client, rt, { resource: rs.uri });
      assert.equal(ok.status, 200);
    });
  }

  it('answers with the code and the tokens when recording the client as used fails after they are committed', async () => {
    await server.database.db.withConnection((c) =>
      c.exec(`
        CREATE FUNCTION refuse_client_update() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN RAISE EXCEPTION 'clients are read-only in this test'; END $$;
        CREATE TRIGGER refuse_client_update BEFORE UPDATE ON clients
          FOR EACH ROW EXECUTE FUNCTION refuse_client_update();`),
    );
    try {
      const code = await obtainCode(server, client, email, { resource: rs.uri });
      const res = await exchangeCode(server, client, code);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal((await introspect(server.url, rs, String(res.body.access_token))).active, true);
      const refreshed = await refreshToken(server, client, String(res.body.refresh_token));
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    } finally {
      await server.database.db.withConnection((c) =>
        c.exec('DROP TRIGGER refuse_client_update ON clients; DROP FUNCTION refuse_client_update();'),
      );
    }
  });
});
