// Keyed token tags (docs/security.md: Token format; issue 12): /introspect refuses a token Latchkey did not mint
// without a cache lookup or a statement; untagged tokens minted before tags are looked up only while one can still be
// live; every instance on one database shares the key, so each accepts the other's tokens.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { hashSecret, randomToken } from '../../src/lib/crypto.ts';
import { LEGACY_ALLOWANCE_SECONDS } from '../../src/lib/token-tags.ts';
import { TOKEN_PREFIX } from '../../src/store/tokens.ts';
import { basicAuth } from '../helpers/basic-auth.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';
import { exchangeCode, obtainCode, postForm } from '../helpers/flow.ts';
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

/** Statements sent while `fn` runs, once the background writes of earlier client traces are done. */
async function statementsDuring(fn: () => Promise<unknown>) {
  await Promise.all(servers.map((s) => s.app.latchkey.traces.flush()));
  const log = recordStatements();
  try {
    await fn();
  } finally {
    log.stop();
  }
  return log.sent;
}

/** Statements that read or write a token table (the caller's own row is not one). */
const tokenTables = /"?(access_tokens|refresh_tokens)"?/;

/** The servers running in this file (their trace writers are flushed before counting). */
const servers: TestServer[] = [];

const introspectOn = (server: TestServer, caller: TestResourceServer) => (token: string) =>
  postForm(
    `${server.url}/introspect`,
    { token },
    { authorization: basicAuth(caller.clientId, caller.clientSecret) },
  );

/** `token` with the character at `index` (from the end when negative) replaced by another base64url one. */
function flip(token: string, index: number): string {
  const i = index < 0 ? token.length + index : index;
  const c = token[i] === 'A' ? 'B' : 'A';
  return token.slice(0, i) + c + token.slice(i + 1);
}

forEachDatabase('/introspect: tokens Latchkey did not mint are refused in-process', (kind) => {
  let server: TestServer;
  let client: TestClient;
  let rs: TestResourceServer;
  let email: string;
  let introspect: (token: string) => Promise<{ status: number; body: Record<string, unknown> }>;

  before(async () => {
    server = await startServer(kind);
    servers.push(server);
    client = await addClient(server.stores);
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    email = await addUser(server.stores);
    introspect = introspectOn(server, rs);
    assert.equal((await introspect('warm-up')).status, 200); // the caller's row is cached, as on a server in use
  });
  after(async () => {
    servers.splice(servers.indexOf(server), 1);
    await server.close();
  });

  async function userToken(): Promise<string> {
    const code = await obtainCode(server, client, email, { resource: rs.uri });
    const res = await exchangeCode(server, client, code);
    assert.equal(res.status, 200);
    return String(res.body.access_token);
  }

  it('mints every token as prefix, 43 random characters and an 8-character tag', async () => {
    const code = await obtainCode(server, client, email, { resource: rs.uri });
    assert.match(code, /^lk_code_[A-Za-z0-9_-]{51}$/);
    const res = await exchangeCode(server, client, code);
    assert.match(String(res.body.access_token), /^lk_at_[A-Za-z0-9_-]{51}$/);
    assert.match(String(res.body.refresh_token), /^lk_rt_[A-Za-z0-9_-]{51}$/);
    const tags = server.app.latchkey.tokenTags;
    assert.equal(tags.shape(String(res.body.access_token), TOKEN_PREFIX.access), 'tagged');
    assert.equal(tags.shape(String(res.body.refresh_token), TOKEN_PREFIX.refresh), 'tagged');
    assert.equal(tags.shape(code, TOKEN_PREFIX.code), 'tagged');
  });

  it('answers a made-up token in the minted shape inactive with no statement, every time', async () => {
    for (let i = 0; i < 3; i++) {
      const madeUp = `${TOKEN_PREFIX.access}${crypto.randomBytes(32).toString('base64url')}${crypto.randomBytes(6).toString('base64url')}`;
      let body: Record<string, unknown> = {};
      const sent = await statementsDuring(async () => {
        body = (await introspect(madeUp)).body;
      });
      assert.deepEqual(body, { active: false });
      assert.equal(sent.length, 0, sent.map((s) => s.text).join('\n---\n'));
    }
  });

  it('answers a minted token with one tag character changed inactive with no statement; the token itself is active', async () => {
    const token = await userToken();
    for (const index of [-1, -8]) {
      const forged = flip(token, index);
      assert.equal(server.app.latchkey.tokenTags.shape(forged, TOKEN_PREFIX.access), 'forged');
      let body: Record<string, unknown> = {};
      const sent = await statementsDuring(async () => {
        body = (await introspect(forged)).body;
      });
      assert.deepEqual(body, { active: false });
      assert.equal(sent.length, 0, sent.map((s) => s.text).join('\n---\n'));
    }
    // Its random part changed instead: the tag no longer matches either.
    assert.equal(server.app.latchkey.tokenTags.shape(flip(token, 10), TOKEN_PREFIX.access), 'forged');
    assert.equal((await statementsDuring(() => introspect(flip(token, 10)))).length, 0);
    const body = (await introspect(token)).body;
    assert.equal(body.active, true);
    assert.equal(body.username, email);
  });

  it('answers every other shape inactive with no statement: other lengths, characters and prefixes', async () => {
    const token = await userToken();
    const refresh = server.app.latchkey.tokenTags.mint(TOKEN_PREFIX.refresh);
    for (const other of [
      'lk_at_x',
      `${token}A`,
      token.slice(0, -1),
      `${token.slice(0, -2)}.=`,
      refresh,
      token.replace(TOKEN_PREFIX.access, TOKEN_PREFIX.refresh),
      `x${token}`,
    ]) {
      let status = 0;
      let body: Record<string, unknown> = {};
      const sent = await statementsDuring(async () => {
        ({ status, body } = await introspect(other));
      });
      assert.equal(status, 200, other);
      assert.deepEqual(body, { active: false }, other);
      assert.equal(sent.length, 0, `${other}: ${sent.map((s) => s.text).join('\n---\n')}`);
    }
  });

  it('answers /revoke of a made-up token 200 without looking it up, and still revokes a minted one (RFC 7009 §2.2)', async () => {
    const code = await obtainCode(server, client, email, { resource: rs.uri });
    const pair = (await exchangeCode(server, client, code)).body;
    const access = String(pair.access_token);
    const refresh = String(pair.refresh_token);
    const revoke = (token: string) => postForm(`${server.url}/revoke`, { token, client_id: client.clientId });
    for (const madeUp of [flip(access, -1), flip(refresh, -1), 'lk_rt_x', `${refresh}A`]) {
      let status = 0;
      const sent = await statementsDuring(async () => {
        ({ status } = await revoke(madeUp));
      });
      assert.equal(status, 200, madeUp);
      const lookups = sent.filter((s) => tokenTables.test(s.text));
      assert.equal(lookups.length, 0, `${madeUp}: ${lookups.map((s) => s.text).join('\n---\n')}`);
    }
    assert.equal((await introspect(access)).body.active, true, 'a made-up look-alike revoked nothing');
    assert.equal((await revoke(refresh)).status, 200);
    assert.equal((await introspect(access)).body.active, false, 'the minted refresh token revoked its grant');
  });

  describe('tokens minted before tags (untagged)', () => {
    /** An access token stored as one minted before tags: issued now, its hash replaced by an untagged token's. */
    async function legacyToken(expiresAt: Date): Promise<string> {
      const legacy = randomToken(32, TOKEN_PREFIX.access);
      const c = await server.stores.clients.findByClientId(client.clientId);
      const r = await server.stores.resourceServers.findByUri(rs.uri);
      const grant = { clientId: c!.id, resourceServerId: r!.id, scopes: ['mcp'] };
      const issued = await server.stores.tokens.issueClientGrant(grant, 3600, server.clock.now());
      await server.database.db.prisma.accessToken.update({
        where: { tokenHash: hashSecret(issued.accessToken) },
        data: { tokenHash: hashSecret(legacy), expiresAt },
      });
      return legacy;
    }

    it('looks one up while one can still be live, and refuses the shape with no statement after that', async () => {
      const tags = server.app.latchkey.tokenTags;
      const closes = tags.legacyUntil(server.config.accessTokenTtl);
      assert.equal(
        closes.getTime(),
        tags.createdAt.getTime() + (server.config.accessTokenTtl + LEGACY_ALLOWANCE_SECONDS) * 1000,
      );
      // Live past the window, so only the window can refuse it once it has closed.
      const legacy = await legacyToken(new Date(closes.getTime() + 3600_000));
      assert.equal(tags.shape(legacy, TOKEN_PREFIX.access), 'untagged');
      let body: Record<string, unknown> = {};
      const open = await statementsDuring(async () => {
        body = (await introspect(legacy)).body;
      });
      assert.equal(body.active, true);
      assert.equal(body.sub, client.clientId);
      // Only the token lookups are counted here: the caller's cached row may have been dropped by the previous
      // test's revocation, whose own notification reaches this instance after its answer (a harmless extra read).
      const lookups = open.filter((s) => tokenTables.test(s.text));
      assert.equal(lookups.length, 1, open.map((s) => s.text).join('\n---\n'));
      const unknown = randomToken(32, TOKEN_PREFIX.access);
      const unknownSent = await statementsDuring(() => introspect(unknown));
      assert.equal(unknownSent.filter((s) => tokenTables.test(s.text)).length, 1, 'looked up while open');

      server.clock.advance((closes.getTime() - server.clock.now().getTime()) / 1000 - 1);
      assert.equal((await introspect(legacy)).body.active, true, 'still open a second before it closes');
      server.clock.advance(1);
      // After the clock's jump this instance trusts its caches again only once it has beaten (src/changes.ts); then
      // the caller's row is cached again, as on a server in use.
      // Twice: a beat already under way when the clock jumped is dated before the jump; the second one is not.
      await server.app.latchkey.changes.heartbeat();
      await server.app.latchkey.changes.heartbeat();
      await introspect('warm-up');
      const closed = await statementsDuring(async () => {
        body = (await introspect(legacy)).body;
      });
      assert.deepEqual(body, { active: false });
      assert.equal(closed.length, 0, closed.map((s) => s.text).join('\n---\n'));
      assert.equal(
        (await statementsDuring(() => introspect(randomToken(32, TOKEN_PREFIX.access)))).length,
        0,
      );
      // Tagged tokens are unaffected.
      assert.equal((await introspect(await userToken())).body.active, true);
    });
  });
});

forEachDatabase('token tags: one key per deployment', (kind) => {
  let database: TestDatabase;
  let a: TestServer;
  let b: TestServer;

  before(async () => {
    database = await migratedDatabase(kind);
    // Two first starts at once on an empty settings table: they must agree on one key.
    [a, b] = await Promise.all([startServer(kind, { database }), startServer(kind, { database })]);
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await database?.cleanup();
  });

  it('lets two instances on one database each accept the tokens the other minted', async () => {
    const rows = await database.db.prisma.setting.findMany({ where: { key: 'token_tag_key' } });
    assert.equal(rows.length, 1);
    assert.deepEqual(a.app.latchkey.tokenTags.createdAt, b.app.latchkey.tokenTags.createdAt);
    const client = await addClient(a.stores);
    const rs = await addResourceServer(a.stores, 'https://mcp.example.com/mcp');
    const email = await addUser(a.stores);
    for (const [minter, checker] of [
      [a, b],
      [b, a],
    ] as const) {
      const code = await obtainCode(minter, client, email, { resource: rs.uri });
      const res = await exchangeCode(minter, client, code);
      assert.equal(res.status, 200);
      const token = String(res.body.access_token);
      assert.equal(checker.app.latchkey.tokenTags.shape(token, TOKEN_PREFIX.access), 'tagged');
      const body = (await introspectOn(checker, rs)(token)).body;
      assert.equal(body.active, true);
      assert.equal(body.username, email);
    }
  });

  it('keeps the key across restarts: a token minted before a restart is active after it', async () => {
    const client = await addClient(a.stores);
    const rs = await addResourceServer(a.stores, 'https://restart.example.com/mcp');
    const email = await addUser(a.stores);
    const code = await obtainCode(a, client, email, { resource: rs.uri });
    const token = String((await exchangeCode(a, client, code)).body.access_token);
    await a.close();
    a = await startServer(kind, { database });
    assert.equal((await introspectOn(a, rs)(token)).body.active, true);
  });
});
