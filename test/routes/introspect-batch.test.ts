// Uncached introspections coalesced (store/introspection.ts, lib/batch-loader.ts; issue 12): lookups asked for
// together share one SQL statement, `WHERE token_hash = ANY(…)`, and each caller still gets its own answer (RFC 7662
// §2.2: active only for a live token bound to the caller, RFC 8707); a batch whose statement fails answers each of
// its callers as a failed lookup always is (503 temporarily_unavailable while the database is away), and the next
// batch is read afresh.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { hashSecret, randomToken } from '../../src/lib/crypto.ts';
import { TOKEN_PREFIX } from '../../src/store/tokens.ts';
import { basicAuth } from '../helpers/basic-auth.ts';
import { databaseThroughProxy, forEachDatabase, type TestDatabase } from '../helpers/db.ts';
import { postForm } from '../helpers/flow.ts';
import { TcpProxy } from '../helpers/net.ts';
import {
  addClient,
  addResourceServer,
  startServer,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';
import { recordStatements } from '../helpers/statement-count.ts';

forEachDatabase('/introspect: uncached lookups asked for together share one statement', (kind) => {
  let server: TestServer;
  let rs: TestResourceServer;
  let other: TestResourceServer;
  let grantFor: (
    r: TestResourceServer,
  ) => Promise<{ clientId: string; resourceServerId: string; scopes: string[] }>;
  let clientId: string;

  before(async () => {
    server = await startServer(kind);
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    other = await addResourceServer(server.stores, 'https://other.example.com/mcp');
    clientId = (await addClient(server.stores)).clientId;
    const client = await server.stores.clients.findByClientId(clientId);
    grantFor = async (r) => ({
      clientId: client!.id,
      resourceServerId: (await server.stores.resourceServers.findByUri(r.uri))!.id,
      scopes: ['mcp'],
    });
  });
  after(() => server.close());

  const issue = async (r: TestResourceServer, at = server.clock.now()) =>
    (await server.stores.tokens.issueClientGrant(await grantFor(r), 3600, at)).accessToken;

  /** One of each kind of token a resource server may present, none of them cached anywhere yet. */
  async function mixedTokens() {
    const active = await issue(rs);
    const revoked = await issue(rs);
    const row = await server.stores.tokens.findAccessToken(revoked);
    await server.stores.tokens.revokeAccessToken(row!.id, server.clock.now());
    // Issued two hours ago for an hour.
    const expired = await issue(rs, new Date(server.clock.now().getTime() - 7_200_000));
    const otherAudience = await issue(other);
    const unknown = randomToken(32, TOKEN_PREFIX.access);
    return { active, revoked, expired, otherAudience, unknown };
  }

  it('reads tokens asked for in the same turn with one statement, each with its own facts, a repeated one once', async () => {
    const t = await mixedTokens();
    // The app's own store, as /introspect uses it.
    const find = server.app.latchkey.stores.introspection.find;
    const log = recordStatements();
    let found: Awaited<ReturnType<typeof find>>[];
    try {
      found = await Promise.all(
        [t.active, t.revoked, t.expired, t.otherAudience, t.unknown, t.active].map((x) =>
          find(hashSecret(x)),
        ),
      );
    } finally {
      log.stop();
    }
    assert.equal(log.sent.length, 1, log.sent.map((s) => s.text).join('\n---\n'));
    assert.match(log.sent[0]!.text, /token_hash = ANY/);
    const [active, revoked, expired, otherAudience, unknown, again] = found;
    assert.equal(active?.revoked, false);
    assert.equal(active?.audience, rs.uri);
    assert.ok(active!.expiresAt > server.clock.now());
    assert.equal(active?.clientId, clientId);
    assert.deepEqual(again, active);
    assert.equal(revoked?.revoked, true);
    assert.equal(revoked?.grantRevoked, false);
    assert.equal(expired?.revoked, false);
    assert.ok(expired!.expiresAt <= server.clock.now());
    assert.equal(otherAudience?.audience, other.uri);
    assert.equal(unknown, null);
  });

  it('answers concurrent introspections of a mix of tokens each with its own answer (RFC 7662 §2.2)', async () => {
    const t = await mixedTokens();
    const introspect = (token: string) =>
      postForm(
        `${server.url}/introspect`,
        { token },
        { authorization: basicAuth(rs.clientId, rs.clientSecret) },
      );
    const answers = await Promise.all(
      [t.active, t.revoked, t.expired, t.otherAudience, t.unknown, t.active].map(introspect),
    );
    for (const a of answers) assert.equal(a.status, 200);
    const [active, revoked, expired, otherAudience, unknown, again] = answers.map((a) => a.body);
    assert.equal(active?.active, true);
    assert.equal(active?.sub, clientId);
    assert.equal(active?.aud, rs.uri);
    assert.deepEqual(again, active);
    for (const inactive of [revoked, expired, otherAudience, unknown])
      assert.deepEqual(inactive, { active: false });
  });
});

forEachDatabase('/introspect: a batch whose statement fails', (kind) => {
  let server: TestServer;
  let database: TestDatabase;
  let rs: TestResourceServer;
  let tokens: string[];
  const proxy = new TcpProxy('127.0.0.1', 5432);
  let dropDatabase: (() => Promise<void>) | undefined;

  before(async () => {
    // On Postgres, through a proxy this test cuts; the shared server itself is never touched.
    ({ database, drop: dropDatabase } = await databaseThroughProxy(kind, proxy));
    server = await startServer(kind, { database });
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    const client = await server.stores.clients.findByClientId((await addClient(server.stores)).clientId);
    const resourceServerId = (await server.stores.resourceServers.findByUri(rs.uri))!.id;
    tokens = [];
    for (let i = 0; i < 6; i++) {
      const grant = { clientId: client!.id, resourceServerId, scopes: ['mcp'] };
      tokens.push((await server.stores.tokens.issueClientGrant(grant, 3600, server.clock.now())).accessToken);
    }
    // The caller's row is cached, as on a server in use: only the token lookups reach the database.
    await introspect(randomToken(32, TOKEN_PREFIX.access));
  });
  after(async () => {
    await server.close();
    await database.cleanup();
    await proxy.close();
    await dropDatabase?.();
  });

  const introspect = (token: string) =>
    postForm(
      `${server.url}/introspect`,
      { token },
      { authorization: basicAuth(rs.clientId, rs.clientSecret) },
    );

  it('answers each of its callers 503 temporarily_unavailable, and (Postgres, whose server comes back) the next batch works (RFC 6749 §5.2)', async () => {
    const [down, up] = [tokens.slice(0, 3), tokens.slice(3)];
    if (kind === 'pglite') await database.db.close();
    else await proxy.cut();
    const failed = await Promise.all(down.map(introspect));
    for (const res of failed) {
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.equal(res.body.error, 'temporarily_unavailable');
      assert.equal(res.headers.get('retry-after'), '5');
    }
    // An embedded database, once closed, does not come back within this process.
    if (kind === 'pglite') return;
    await proxy.open();
    const answers = await Promise.all([...up, ...down].map(introspect));
    for (const res of answers) {
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.active, true);
    }
  });
});
