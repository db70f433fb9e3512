// /introspect's database path and the caches around it (README: How it is built; docs/security.md: Caches): an
// uncached token costs one SQL statement; unknown tokens are remembered for a few seconds, but a token presented
// before it was issued is active once issued; cached client and resource-server rows never outlive a change.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { after, before, describe, it, mock } from 'node:test';
import { hashSecret, randomToken, resetRandomPool } from '../../src/lib/crypto.ts';
import { TOKEN_PREFIX } from '../../src/store/tokens.ts';
import { basicAuth } from '../helpers/basic-auth.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { exchangeCode, obtainCode, postForm, tokenRequest } from '../helpers/flow.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  startServer,
  type TestClient,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';
import { recordStatements } from '../helpers/statement-count.ts';

/** Runs `fn` with `fixed` as the first 32 random bytes drawn (a token's), and real ones for everything else. */
async function drawingFirst<T>(fixed: Buffer, fn: () => Promise<T>): Promise<T> {
  // Tokens draw their random bytes from a pool (src/lib/crypto.ts randomPooled): start a fresh one whose first
  // 32 bytes are `fixed`, so the first token minted in `fn` is made of them.
  const original = crypto.randomFillSync;
  let used = false;
  mock.method(crypto, 'randomFillSync', (buf: Buffer) => {
    const filled = original(buf);
    if (!used && buf.length >= fixed.length) {
      used = true;
      fixed.copy(buf, 0);
    }
    return filled;
  });
  syncBuiltinESMExports();
  resetRandomPool();
  try {
    return await fn();
  } finally {
    mock.restoreAll();
    syncBuiltinESMExports();
  }
}

forEachDatabase('/introspect: one statement, and caches that cannot lie', (kind) => {
  let server: TestServer;
  let client: TestClient;
  let rs: TestResourceServer;
  let email: string;

  before(async () => {
    server = await startServer(kind);
    client = await addClient(server.stores);
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    email = await addUser(server.stores);
  });
  after(() => server.close());

  const introspect = (token: string, caller: TestResourceServer = rs) =>
    postForm(
      `${server.url}/introspect`,
      { token },
      { authorization: basicAuth(caller.clientId, caller.clientSecret) },
    );

  async function userToken(): Promise<string> {
    const code = await obtainCode(server, client, email, { resource: rs.uri });
    const res = await exchangeCode(server, client, code);
    assert.equal(res.status, 200);
    return String(res.body.access_token);
  }

  /** Statements sent while `fn` runs. */
  async function statementsDuring(fn: () => Promise<unknown>) {
    // Earlier requests' client traces are written in the background, in a transaction whose COMMIT the count
    // would see: write them first.
    await server.app.latchkey.traces.flush();
    const log = recordStatements();
    try {
      await fn();
    } finally {
      log.stop();
    }
    return log.sent;
  }

  it('answers a token it has not cached with one SQL statement', async () => {
    // The caller's row is cached by a first call, as it is on a server in use.
    assert.equal((await introspect(await userToken())).body.active, true);
    const token = await userToken();
    let body: Record<string, unknown> = {};
    const sent = await statementsDuring(async () => {
      body = (await introspect(token)).body;
    });
    assert.equal(body.active, true);
    assert.equal(body.username, email);
    assert.equal(body.aud, rs.uri);
    assert.equal(sent.length, 1, sent.map((s) => s.text).join('\n---\n'));
    assert.match(sent[0]!.text, /FROM access_tokens/);
    // Cached now: no statement at all.
    assert.equal((await statementsDuring(() => introspect(token))).length, 0);
  });

  it('remembers an unknown token for a few seconds: a second ask costs no statement', async () => {
    // In the minted shape with a valid tag, so it is looked up (a made-up tag is refused in-process, with no
    // statement at all: introspect-tags.test.ts); such a token is one that was minted and never stored.
    const unknown = server.app.latchkey.tokenTags.mint(TOKEN_PREFIX.access);
    assert.equal((await introspect('warm-up')).status, 200); // the caller's row is cached
    const first = await statementsDuring(async () =>
      assert.equal((await introspect(unknown)).body.active, false),
    );
    assert.equal(first.length, 1, first.map((x) => x.text).join('\n'));
    const second = await statementsDuring(async () =>
      assert.equal((await introspect(unknown)).body.active, false),
    );
    assert.equal(second.length, 0, second.map((x) => x.text).join('\n---\n'));
    server.clock.advance(6);
    const later = await statementsDuring(() => introspect(unknown));
    assert.equal(
      later.length,
      1,
      `the entry is gone after its few seconds:\n${later.map((x) => x.text).join('\n---\n')}`,
    );
  });

  it('finds a token active once issued, though it was presented (unknown) before', async () => {
    const fixed = crypto.randomBytes(32);
    // The token the store mints from these random bytes (src/lib/token-tags.ts), tag and all.
    const token = server.app.latchkey.tokenTags.mint(TOKEN_PREFIX.access, fixed);
    assert.deepEqual((await introspect(token)).body, { active: false });
    {
      const s = await statementsDuring(() => introspect(token));
      assert.equal(s.length, 0, s.map((x) => x.text).join('\n'));
    }

    // Issue through the store, with the random bytes the token above was made of.
    const c = await server.stores.clients.findByClientId(client.clientId);
    const r = await server.stores.resourceServers.findByUri(rs.uri);
    const issued = await drawingFirst(fixed, async () => {
      const grant = { clientId: c!.id, resourceServerId: r!.id, scopes: ['mcp'] };
      return (await server.stores.tokens.issueClientGrant(grant, 3600, server.clock.now())).accessToken;
    });
    assert.equal(issued, token);
    assert.equal(hashSecret(issued), hashSecret(token));
    const body = (await introspect(token)).body;
    assert.equal(body.active, true);
    assert.equal(body.sub, client.clientId);
  });

  it('finds a token active once a code exchange issued it (the one-statement path), though presented before', async () => {
    const code = await obtainCode(server, client, email, { resource: rs.uri });
    const fixed = crypto.randomBytes(32);
    // The token the store mints from these random bytes (src/lib/token-tags.ts), tag and all.
    const token = server.app.latchkey.tokenTags.mint(TOKEN_PREFIX.access, fixed);
    assert.deepEqual((await introspect(token)).body, { active: false });
    {
      const s = await statementsDuring(() => introspect(token));
      assert.equal(s.length, 0, s.map((x) => x.text).join('\n'));
    }

    // The exchange's access token is the first 32 random bytes drawn (store/token-paths.ts: mint).
    const issued = await drawingFirst(fixed, async () => {
      const res = await exchangeCode(server, client, code);
      assert.equal(res.status, 200);
      return String(res.body.access_token);
    });
    assert.equal(issued, token);
    const body = (await introspect(token)).body;
    assert.equal(body.active, true);
    assert.equal(body.username, email);
  });

  it('answers inactive while a user is disabled, and active again once enabled (no stale inactive answer)', async () => {
    const who = await addUser(server.stores);
    const code = await obtainCode(server, client, who, { resource: rs.uri });
    const token = String((await exchangeCode(server, client, code)).body.access_token);
    await server.stores.users.setDisabled(who, true);
    await server.app.latchkey.changes.flush();
    assert.equal((await introspect(token)).body.active, false);
    await server.stores.users.setDisabled(who, false);
    await server.app.latchkey.changes.flush();
    assert.equal((await introspect(token)).body.active, true);
  });

  describe('resource servers', () => {
    it('refuses a rotated secret on the next call, though the caller was cached', async () => {
      const own = await addResourceServer(server.stores, 'https://rotate.example.com/mcp');
      assert.equal((await introspect('lk_at_x', own)).status, 200);
      assert.equal(
        (await statementsDuring(() => introspect('lk_at_x', own))).length,
        0,
        'the caller is cached',
      );
      const secret = randomToken(32);
      await server.stores.resourceServers.rotateSecret(own.uri, hashSecret(secret), server.clock.now());
      await server.app.latchkey.changes.flush();
      assert.equal((await introspect('lk_at_x', own)).status, 401);
      assert.equal((await introspect('lk_at_x', { ...own, clientSecret: secret })).status, 200);
    });

    it('refuses a deleted resource server on the next call', async () => {
      const own = await addResourceServer(server.stores, 'https://deleted.example.com/mcp');
      assert.equal((await introspect('lk_at_x', own)).status, 200);
      await server.stores.resourceServers.delete(own.uri);
      await server.app.latchkey.changes.flush();
      assert.equal((await introspect('lk_at_x', own)).status, 401);
    });

    it('checks the secret on every call: a wrong one is refused while the row is cached', async () => {
      assert.equal((await introspect('lk_at_x')).status, 200);
      assert.equal((await introspect('lk_at_x', { ...rs, clientSecret: `${rs.clientSecret}x` })).status, 401);
      assert.equal((await introspect('lk_at_x', { ...rs, clientSecret: '' })).status, 401);
    });
  });

  describe('clients at /token', () => {
    async function machine() {
      const c = await addClient(server.stores, {
        authMethod: 'client_secret_post',
        grantTypes: ['client_credentials'],
      });
      const ask = (secret = c.clientSecret!) =>
        tokenRequest(server, {
          grant_type: 'client_credentials',
          resource: rs.uri,
          client_id: c.clientId,
          client_secret: secret,
        });
      return { c, ask };
    }

    it('does not read a cached client again, and still checks its secret on every call', async () => {
      const { ask } = await machine();
      assert.equal((await ask()).status, 200);
      const sent = await statementsDuring(async () => assert.equal((await ask()).status, 200));
      assert.equal(sent.filter((s) => /FROM "?(public"\.)?"?clients"?\s+WHERE/i.test(s.text)).length, 0);
      assert.equal((await ask('wrong')).status, 401);
    });

    it('records a use once a minute: a second use within it writes nothing, one after it is recorded', async () => {
      const { c, ask } = await machine();
      const lastUsed = async () =>
        (await server.stores.clients.findByClientId(c.clientId))?.lastUsedAt?.getTime();
      assert.equal((await ask()).status, 200);
      const first = server.clock.now().getTime();
      assert.equal(await lastUsed(), first);
      server.clock.advance(30);
      const sent = await statementsDuring(async () => assert.equal((await ask()).status, 200));
      assert.equal(sent.filter((s) => /^UPDATE\b.*"clients"/is.test(s.text)).length, 0, 'no write sent');
      assert.equal(await lastUsed(), first);
      server.clock.advance(31);
      assert.equal((await ask()).status, 200);
      assert.equal(await lastUsed(), server.clock.now().getTime());
    });

    it('refuses a deleted client on the next call', async () => {
      const { c, ask } = await machine();
      assert.equal((await ask()).status, 200);
      await server.stores.clients.delete(c.clientId);
      await server.app.latchkey.changes.flush();
      assert.equal((await ask()).status, 401);
    });
  });
});
