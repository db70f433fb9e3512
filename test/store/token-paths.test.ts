// The happy paths of /token in one or two round trips (issue 12; README: How it is built): a code exchange and a
// refresh rotation each send at most two statements (one read, one conditional write; no BEGIN/COMMIT), write
// what the transactional path wrote, and keep single use under concurrency. Counted through Prisma's `query` log
// events, which report every statement a client sends, on both databases. The Postgres session of the counted
// client runs in a non-UTC TimeZone, to show the raw statements store the same instants Prisma does.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '../../src/generated/prisma/client.ts';
import { addSeconds } from '../../src/lib/clock.ts';
import { hashSecret } from '../../src/lib/crypto.ts';
import { authorizationCodeGrant } from '../../src/oauth/grants/authorization-code.ts';
import { refreshTokenGrant } from '../../src/oauth/grants/refresh-token.ts';
import type { GrantDependencies, GrantHandler } from '../../src/oauth/grants/types.ts';
import { Params } from '../../src/oauth/params.ts';
import { createStores, type Stores } from '../../src/store/index.ts';
import { resourceServerStore } from '../../src/store/resource-servers.ts';
import { type IssuedTokens, type TokenIssue, tokenStore } from '../../src/store/tokens.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { CHALLENGE, VERIFIER } from '../helpers/flow.ts';
import { addClient, addResourceServer, addUser } from '../helpers/server.ts';
import { type CountedDatabase, countedDatabase } from '../helpers/statements.ts';

const CONFIG = { accessTokenTtl: 3600, refreshTokenTtl: 30 * 86400, refreshReuseWindow: 60, scopes: ['mcp'] };
const TRANSACTION = /^\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION)|Implicit "COMMIT"/i;

forEachDatabase('token paths', (kind) => {
  let counted: CountedDatabase;
  let stores: Stores;
  let client: Client;
  let userId: string;
  let resourceServerId: string;
  let exchange: GrantHandler;
  let refresh: GrantHandler;
  const now = new Date('2026-11-30T11:00:00.123Z');

  before(async () => {
    counted = await countedDatabase(kind, 'America/New_York');
    if (kind === 'postgres') {
      const [tz] = await counted.prisma.$queryRaw<{ tz: string }[]>`SELECT current_setting('TimeZone') AS tz`;
      assert.equal(tz?.tz, 'America/New_York');
    }
    stores = createStores(counted.database.db.prisma);
    const c = await addClient(stores);
    client = (await stores.clients.findByClientId(c.clientId)) as Client;
    const email = await addUser(stores);
    userId = ((await stores.users.findByEmail(email)) as { id: string }).id;
    const rs = await addResourceServer(stores, 'https://mcp.example.com/mcp');
    resourceServerId = ((await stores.resourceServers.findByUri(rs.uri)) as { id: string }).id;
    const deps: GrantDependencies = {
      // The deployment's token tag key is read once per set of stores (a server does it at start), not per request.
      tokens: tokenStore(counted.prisma, stores.tokenTags),
      resourceServers: resourceServerStore(counted.prisma),
      flushChanges: async () => {},
      config: CONFIG,
    };
    exchange = authorizationCodeGrant.create(deps);
    refresh = refreshTokenGrant.create(deps);
  });
  after(() => counted.cleanup());

  function newCode(forClient: Client = client): Promise<string> {
    const code = {
      userId,
      clientId: forClient.id,
      resourceServerId,
      redirectUri: 'http://127.0.0.1:9/callback',
      requestedResource: null,
      codeChallenge: CHALLENGE,
      scopes: ['mcp', 'mcp:write'],
    };
    return stores.grants.createAuthorizationCode(code, 600, now);
  }

  /** Runs `fn` and returns what it returned with the statements it sent. */
  async function counting<T>(fn: () => Promise<T>): Promise<{ result: T; statements: string[] }> {
    counted.statements.length = 0;
    const result = await fn();
    return { result, statements: [...counted.statements] };
  }

  const exchangeParams = (code: string) => new Params({ code, code_verifier: VERIFIER });

  describe('round trips', () => {
    it('exchanges a code in at most two statements, no transaction, writing the same rows as before', async () => {
      const code = await newCode();
      const { result, statements } = await counting(() =>
        exchange({ client, params: exchangeParams(code), now }),
      );
      assert.ok(
        statements.length >= 1 && statements.length <= 2,
        `${statements.length}:\n${statements.join('\n')}`,
      );
      assert.equal(statements.filter((s) => TRANSACTION.test(s)).length, 0, statements.join('\n'));
      const prisma = counted.database.db.prisma;
      const spent = await prisma.authorizationCode.findUniqueOrThrow({
        where: { codeHash: hashSecret(code) },
      });
      assert.deepEqual(spent.usedAt, now);
      const at = await prisma.accessToken.findUniqueOrThrow({
        where: { tokenHash: hashSecret(result.accessToken) },
      });
      const rt = await prisma.refreshToken.findUniqueOrThrow({
        where: { tokenHash: hashSecret(result.refreshToken as string) },
      });
      assert.equal(at.grantId, spent.grantId);
      assert.equal(at.refreshTokenId, rt.id);
      assert.deepEqual(at.scopes, ['mcp', 'mcp:write']);
      assert.deepEqual(at.createdAt, now);
      assert.deepEqual(at.expiresAt, addSeconds(now, CONFIG.accessTokenTtl));
      assert.deepEqual(rt.expiresAt, addSeconds(now, CONFIG.refreshTokenTtl));
      assert.equal(rt.parentId, null);
      assert.equal(result.expiresIn, CONFIG.accessTokenTtl);
    });

    it('exchanges a code of a client without the refresh_token grant in two statements, and mints no refresh token', async () => {
      const c = await addClient(stores, { grantTypes: ['authorization_code'] });
      const noRefresh = (await stores.clients.findByClientId(c.clientId)) as Client;
      const code = await newCode(noRefresh);
      const { result, statements } = await counting(() =>
        exchange({ client: noRefresh, params: exchangeParams(code), now }),
      );
      assert.ok(statements.length >= 1 && statements.length <= 2, statements.join('\n'));
      assert.equal(result.refreshToken, undefined);
      const prisma = counted.database.db.prisma;
      const at = await prisma.accessToken.findUniqueOrThrow({
        where: { tokenHash: hashSecret(result.accessToken) },
      });
      assert.equal(at.refreshTokenId, null);
      assert.equal(await prisma.refreshToken.count({ where: { grantId: at.grantId } }), 0);
    });

    it('rotates a refresh token in at most two statements, no transaction, keeping the reuse-window answer', async () => {
      const first = await exchange({ client, params: exchangeParams(await newCode()), now });
      const later = addSeconds(now, 10);
      const params = new Params({ refresh_token: first.refreshToken as string, scope: 'mcp:write' });
      const { result, statements } = await counting(() => refresh({ client, params, now: later }));
      assert.ok(
        statements.length >= 1 && statements.length <= 2,
        `${statements.length}:\n${statements.join('\n')}`,
      );
      assert.equal(statements.filter((s) => TRANSACTION.test(s)).length, 0, statements.join('\n'));
      assert.deepEqual(result.scopes, ['mcp:write'], 'narrowed (RFC 6749 §6)');
      const prisma = counted.database.db.prisma;
      const old = await prisma.refreshToken.findUniqueOrThrow({
        where: { tokenHash: hashSecret(first.refreshToken as string) },
        include: { children: true, replay: true },
      });
      assert.deepEqual(old.rotatedAt, later);
      assert.equal(old.children.length, 1);
      assert.deepEqual(
        old.children[0]?.scopes,
        ['mcp', 'mcp:write'],
        'the refresh token keeps the grant scopes',
      );
      assert.equal(old.children[0]?.tokenHash, hashSecret(result.refreshToken as string));
      assert.deepEqual(old.replay?.expiresAt, addSeconds(later, CONFIG.refreshReuseWindow));
      // The kept answer is the very pair, and a retry inside the window gets it (the transactional path).
      const retry = await refresh({ client, params, now: addSeconds(later, 5) });
      assert.deepEqual(retry, result);
    });
  });

  describe('single use of the one-statement writes', () => {
    const issue: TokenIssue = {
      accessScopes: ['mcp'],
      refreshScopes: ['mcp'],
      parentRefreshId: null,
      accessTokenTtl: 60,
      refreshTokenTtl: 600,
    };

    it('lets exactly one of eight concurrent exchanges of one code claim it', async () => {
      const tokens = tokenStore(counted.prisma, stores.tokenTags);
      const facts = await tokens.findCode(await newCode());
      assert.ok(facts);
      const results = await Promise.all(
        Array.from({ length: 8 }, () => tokens.exchangeCode(facts, issue, now)),
      );
      const won = results.filter((r): r is IssuedTokens => r !== undefined);
      assert.equal(won.length, 1);
      const prisma = counted.database.db.prisma;
      assert.equal(await prisma.accessToken.count({ where: { grantId: facts.grantId } }), 1);
      assert.equal(await prisma.refreshToken.count({ where: { grantId: facts.grantId } }), 1);
    });

    it('lets exactly one of eight concurrent rotations of one refresh token claim it, with one kept answer', async () => {
      const tokens = tokenStore(counted.prisma, stores.tokenTags);
      const first = await exchange({ client, params: exchangeParams(await newCode()), now });
      const presented = first.refreshToken as string;
      const facts = await tokens.findRefresh(presented);
      assert.ok(facts);
      const keep = { presented, until: addSeconds(now, 60) };
      const next = { ...issue, parentRefreshId: facts.id };
      const results = await Promise.all(
        Array.from({ length: 8 }, () => tokens.rotateRefresh(facts, next, keep, now)),
      );
      assert.equal(results.filter((r) => r !== undefined).length, 1);
      const prisma = counted.database.db.prisma;
      assert.equal(await prisma.refreshToken.count({ where: { parentId: facts.id } }), 1);
      assert.equal(await prisma.refreshReplay.count({ where: { id: facts.id } }), 1);
    });

    it('leaves the code and the refresh token unspent and nothing written when the write statement fails', async () => {
      const prisma = counted.database.db.prisma;
      const tokens = tokenStore(counted.prisma, stores.tokenTags);
      const code = await newCode();
      const facts = await tokens.findCode(code);
      const first = await exchange({ client, params: exchangeParams(await newCode()), now });
      const rt = await tokens.findRefresh(first.refreshToken as string);
      assert.ok(facts && rt);
      // The access token insert is the statement's last write: make it fail after the claim and the refresh token.
      await prisma.$executeRawUnsafe(`CREATE FUNCTION refuse_access_token() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused by the test'; END $$`);
      await prisma.$executeRawUnsafe(`CREATE TRIGGER refuse BEFORE INSERT ON access_tokens
        FOR EACH ROW EXECUTE FUNCTION refuse_access_token()`);
      try {
        await assert.rejects(tokens.exchangeCode(facts, issue, now), /refused by the test/);
        const keep = { presented: first.refreshToken as string, until: addSeconds(now, 60) };
        await assert.rejects(tokens.rotateRefresh(rt, { ...issue, parentRefreshId: rt.id }, keep, now));
      } finally {
        await prisma.$executeRawUnsafe('DROP TRIGGER refuse ON access_tokens');
        await prisma.$executeRawUnsafe('DROP FUNCTION refuse_access_token()');
      }
      const row = await prisma.authorizationCode.findUniqueOrThrow({ where: { codeHash: hashSecret(code) } });
      assert.equal(row.usedAt, null);
      assert.equal(await prisma.refreshToken.count({ where: { grantId: facts.grantId } }), 0);
      const spent = await prisma.refreshToken.findUniqueOrThrow({
        where: { id: rt.id },
        include: { replay: true },
      });
      assert.equal(spent.rotatedAt, null);
      assert.equal(spent.replay, null);
      assert.equal(await prisma.refreshToken.count({ where: { parentId: rt.id } }), 0);
      // Both still work afterwards.
      assert.ok(await tokens.exchangeCode(facts, issue, now));
      assert.ok(await refresh({ client, params: new Params({ refresh_token: first.refreshToken }), now }));
    });

    it('claims nothing and writes nothing when the grant was revoked after the read', async () => {
      const tokens = tokenStore(counted.prisma, stores.tokenTags);
      const code = await newCode();
      const facts = await tokens.findCode(code);
      assert.ok(facts);
      await stores.grants.revokeGrant(facts.grantId, 'user', now);
      assert.equal(await tokens.exchangeCode(facts, issue, now), undefined);
      const prisma = counted.database.db.prisma;
      const row = await prisma.authorizationCode.findUniqueOrThrow({ where: { codeHash: hashSecret(code) } });
      assert.equal(row.usedAt, null, 'left for the transactional path to spend');
      assert.equal(await prisma.accessToken.count({ where: { grantId: facts.grantId } }), 0);
      await assert.rejects(exchange({ client, params: exchangeParams(code), now }), /grant was revoked/);
    });
  });
});
