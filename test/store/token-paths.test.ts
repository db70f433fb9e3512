// The happy paths of /token in one round trip (issue 12; README: How it is built): a code exchange and a refresh
// rotation each send one statement (a claim whose conditions are the grant's rules, and the inserts; no
// BEGIN/COMMIT), write what the transactional path wrote, claim nothing when a rule breaks, and keep single use
// under concurrency. Counted on both databases through Prisma's `query` log events, which report every statement a
// client sends, and the stores' raw query, which the one-statement paths take (test/helpers/statements.ts). The
// Postgres sessions of the counted client run in a non-UTC TimeZone, to show the raw statements store the same
// instants Prisma does.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Client } from '../../src/generated/prisma/client.ts';
import { addSeconds } from '../../src/lib/clock.ts';
import { hashSecret } from '../../src/lib/crypto.ts';
import { sealWithSecret } from '../../src/lib/seal.ts';
import { authorizationCodeGrant } from '../../src/oauth/grants/authorization-code.ts';
import { refreshTokenGrant } from '../../src/oauth/grants/refresh-token.ts';
import type { GrantDependencies, GrantHandler } from '../../src/oauth/grants/types.ts';
import { Params } from '../../src/oauth/params.ts';
import { createStores, type Stores } from '../../src/store/index.ts';
import { resourceServerStore } from '../../src/store/resource-servers.ts';
import { openKeptAnswer } from '../../src/store/token-paths.ts';
import {
  type CodeExchange,
  type IssuedTokens,
  type RefreshRotation,
  tokenStore,
} from '../../src/store/tokens.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { CHALLENGE, VERIFIER } from '../helpers/flow.ts';
import { addClient, addResourceServer, addUser } from '../helpers/server.ts';
import { type CountedDatabase, countedDatabase } from '../helpers/statements.ts';

const CONFIG = { accessTokenTtl: 3600, refreshTokenTtl: 30 * 86400, refreshReuseWindow: 60, scopes: ['mcp'] };
const TRANSACTION = /^\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION)|Implicit "COMMIT"/i;

/** What the store-level tests below mint: a pair, as a code exchange or rotation of a client with refresh does. */
const lifetimes = { access: 60, refresh: 600 };

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
    stores = createStores(counted.database.db);
    const c = await addClient(stores);
    client = (await stores.clients.findByClientId(c.clientId)) as Client;
    const email = await addUser(stores);
    userId = ((await stores.users.findByEmail(email)) as { id: string }).id;
    const rs = await addResourceServer(stores, 'https://mcp.example.com/mcp');
    resourceServerId = ((await stores.resourceServers.findByUri(rs.uri)) as { id: string }).id;
    const deps: GrantDependencies = {
      // The deployment's token tag key is read once per set of stores (a server does it at start), not per request.
      tokens: tokenStore(counted.db, stores.tokenTags),
      resourceServers: resourceServerStore(counted.prisma),
      flushChanges: async () => {},
      config: CONFIG,
    };
    exchange = authorizationCodeGrant.create(deps);
    refresh = refreshTokenGrant.create(deps);
  });
  after(() => counted.cleanup());

  function newCode(forClient: Client = client, scopes = ['mcp', 'mcp:write'], ttl = 600): Promise<string> {
    const code = {
      userId,
      clientId: forClient.id,
      resourceServerId,
      redirectUri: 'http://127.0.0.1:9/callback',
      requestedResource: null,
      codeChallenge: CHALLENGE,
      scopes,
    };
    return stores.grants.createAuthorizationCode(code, ttl, now);
  }

  /** A code exchange as the grant handler presents it: this client, the right verifier, no redirect_uri or resource. */
  const exchangeOf = (code: string, over: Partial<CodeExchange> = {}): CodeExchange => ({
    code,
    clientId: client.id,
    verifier: VERIFIER,
    redirectUri: undefined,
    resourceId: undefined,
    lifetimes,
    ...over,
  });

  /** A rotation as the grant handler presents it, keeping the answer for a minute. */
  const rotationOf = (token: string, over: Partial<RefreshRotation> = {}): RefreshRotation => ({
    token,
    clientId: client.id,
    resourceId: undefined,
    scopes: [],
    lifetimes,
    keepUntil: addSeconds(now, 60),
    ...over,
  });

  /** The code's row (its grant, whether it was spent). */
  const codeRow = (code: string) =>
    counted.database.db.prisma.authorizationCode.findUniqueOrThrow({ where: { codeHash: hashSecret(code) } });
  const refreshRow = (token: string) =>
    counted.database.db.prisma.refreshToken.findUniqueOrThrow({
      where: { tokenHash: hashSecret(token) },
      include: { replay: true },
    });

  /** Runs `fn` and returns what it returned with the statements it sent. */
  async function counting<T>(fn: () => Promise<T>): Promise<{ result: T; statements: string[] }> {
    counted.statements.length = 0;
    const result = await fn();
    return { result, statements: [...counted.statements] };
  }

  const exchangeParams = (code: string) => new Params({ code, code_verifier: VERIFIER });

  describe('round trips', () => {
    it('exchanges a code in one statement, no transaction, writing the same rows as before', async () => {
      const code = await newCode();
      const { result, statements } = await counting(() =>
        exchange({ client, params: exchangeParams(code), now }),
      );
      assert.equal(statements.length, 1, statements.join('\n'));
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
      // Time-ordered ids (UUIDv7, src/lib/uuid7.ts) from the request's time: new rows land at the end of the id indexes.
      const ms = now.getTime().toString(16).padStart(12, '0');
      const v7 = new RegExp(`^${ms.slice(0, 8)}-${ms.slice(8)}-7[0-9a-f]{3}-[89ab]`);
      assert.match(at.id, v7);
      assert.match(rt.id, v7);
    });

    it('exchanges a code of a client without the refresh_token grant in one statement, and mints no refresh token', async () => {
      const c = await addClient(stores, { grantTypes: ['authorization_code'] });
      const noRefresh = (await stores.clients.findByClientId(c.clientId)) as Client;
      const code = await newCode(noRefresh);
      const { result, statements } = await counting(() =>
        exchange({ client: noRefresh, params: exchangeParams(code), now }),
      );
      assert.equal(statements.length, 1, statements.join('\n'));
      assert.equal(result.refreshToken, undefined);
      const prisma = counted.database.db.prisma;
      const at = await prisma.accessToken.findUniqueOrThrow({
        where: { tokenHash: hashSecret(result.accessToken) },
      });
      assert.equal(at.refreshTokenId, null);
      assert.equal(await prisma.refreshToken.count({ where: { grantId: at.grantId } }), 0);
    });

    it('rotates a refresh token in one statement, no transaction, keeping the reuse-window answer', async () => {
      const first = await exchange({ client, params: exchangeParams(await newCode()), now });
      const later = addSeconds(now, 10);
      const params = new Params({ refresh_token: first.refreshToken as string, scope: 'mcp:write' });
      const { result, statements } = await counting(() => refresh({ client, params, now: later }));
      assert.equal(statements.length, 1, statements.join('\n'));
      assert.equal(statements.filter((s) => TRANSACTION.test(s)).length, 0, statements.join('\n'));
      assert.deepEqual(result.scopes, ['mcp:write'], 'narrowed (RFC 6749 §6)');
      const prisma = counted.database.db.prisma;
      const old = await prisma.refreshToken.findUniqueOrThrow({
        where: { tokenHash: hashSecret(first.refreshToken as string) },
        include: { replay: true },
      });
      const children = await prisma.refreshToken.findMany({ where: { parentId: old.id } });
      assert.deepEqual(old.rotatedAt, later);
      assert.equal(children.length, 1);
      assert.deepEqual(children[0]?.scopes, ['mcp', 'mcp:write'], 'the refresh token keeps the grant scopes');
      assert.equal(children[0]?.tokenHash, hashSecret(result.refreshToken as string));
      assert.deepEqual(old.replay?.expiresAt, addSeconds(later, CONFIG.refreshReuseWindow));
      assert.deepEqual(
        old.replay?.scopes,
        ['mcp:write'],
        'the kept answer’s scopes, beside its sealed tokens',
      );
      assert.ok(!old.replay?.sealed.includes(result.accessToken), 'the tokens are sealed');
      // The kept answer is the very pair, and a retry inside the window gets it (the transactional path).
      const retry = await refresh({ client, params, now: addSeconds(later, 5) });
      assert.deepEqual(retry, result);
    });

    it('opens an answer kept by the previous version (bound to the row id, scopes sealed inside) during an upgrade', () => {
      const presented = 'lk_rt_presented';
      const answer = { accessToken: 'lk_at_a', refreshToken: 'lk_rt_b', scopes: ['mcp'], expiresIn: 60 };
      const sealed = sealWithSecret(presented, 'row-id', JSON.stringify(answer));
      assert.deepEqual(openKeptAnswer(presented, 'row-id', { sealed, scopes: [] }), answer);
      assert.equal(openKeptAnswer('lk_rt_other', 'row-id', { sealed, scopes: [] }), undefined);
    });
  });

  describe('a broken rule claims nothing, and the grant handler names the rule', () => {
    const other = async () => {
      const c = await addClient(stores);
      return (await stores.clients.findByClientId(c.clientId)) as Client;
    };
    const otherResource = async () => {
      const rs = await addResourceServer(
        stores,
        `https://other-${Date.now()}-${Math.random()}.example.com/mcp`,
      );
      return ((await stores.resourceServers.findByUri(rs.uri)) as { id: string }).id;
    };

    const codeCases: [string, () => Promise<Partial<CodeExchange> & { code?: string }>][] = [
      ['another client', async () => ({ clientId: (await other()).id })],
      ['a wrong verifier', async () => ({ verifier: 'x'.repeat(43) })],
      ['another redirect_uri', async () => ({ redirectUri: 'http://127.0.0.1:9/other' })],
      ['another resource', async () => ({ resourceId: await otherResource() })],
      ['an expired code', async () => ({ code: await newCode(client, ['mcp'], -1) })],
    ];
    for (const [name, presented] of codeCases) {
      it(`code exchange: ${name}`, async () => {
        const tokens = tokenStore(counted.db, stores.tokenTags);
        const p = await presented();
        const code = p.code ?? (await newCode());
        assert.equal(await tokens.exchangeCode(exchangeOf(code, p), now), undefined);
        const row = await codeRow(code);
        assert.equal(row.usedAt, null, 'left for the transactional path');
        const prisma = counted.database.db.prisma;
        assert.equal(await prisma.accessToken.count({ where: { grantId: row.grantId } }), 0);
        assert.equal(await prisma.refreshToken.count({ where: { grantId: row.grantId } }), 0);
      });
    }
    it('code exchange: the grant handler answers each broken rule with its own error', async () => {
      const c = await other();
      const code = await newCode();
      await assert.rejects(
        exchange({ client: c, params: exchangeParams(code), now }),
        /issued to another client/,
      );
      const expired = await newCode(client, ['mcp'], -1);
      await assert.rejects(exchange({ client, params: exchangeParams(expired), now }), /expired/);
    });

    type RefreshCase = { over: Partial<RefreshRotation>; as?: Client; scope?: string };
    const refreshCases: [string, () => Promise<RefreshCase>, RegExp][] = [
      [
        'another client',
        async () => {
          const c = await other();
          return { over: { clientId: c.id }, as: c };
        },
        /issued to another client/,
      ],
      [
        'another resource',
        async () => ({ over: { resourceId: await otherResource() } }),
        /resource does not match/,
      ],
      [
        'a wider scope',
        async () => ({ over: { scopes: ['mcp', 'admin'] }, scope: 'mcp admin' }),
        /scope exceeds/,
      ],
    ];
    for (const [name, presented, error] of refreshCases) {
      it(`refresh: ${name}`, async () => {
        const tokens = tokenStore(counted.db, stores.tokenTags);
        const first = await exchange({ client, params: exchangeParams(await newCode()), now });
        const token = first.refreshToken as string;
        const p = await presented();
        assert.equal(await tokens.rotateRefresh(rotationOf(token, p.over), now), undefined);
        const row = await refreshRow(token);
        assert.equal(row.rotatedAt, null);
        assert.equal(row.replay, null);
        assert.equal(await counted.database.db.prisma.refreshToken.count({ where: { parentId: row.id } }), 0);
        // The resource case needs the resource's URI on the form; the store-level check above is the point there.
        if (p.over.resourceId) return;
        const params = new Params({ refresh_token: token, ...(p.scope ? { scope: p.scope } : {}) });
        await assert.rejects(refresh({ client: p.as ?? client, params, now }), error);
      });
    }
    it('refresh: an expired refresh token', async () => {
      const tokens = tokenStore(counted.db, stores.tokenTags);
      const first = await exchange({ client, params: exchangeParams(await newCode()), now });
      const token = first.refreshToken as string;
      const later = addSeconds(now, CONFIG.refreshTokenTtl);
      assert.equal(await tokens.rotateRefresh(rotationOf(token), later), undefined);
      assert.equal((await refreshRow(token)).rotatedAt, null);
      await assert.rejects(
        refresh({ client, params: new Params({ refresh_token: token }), now: later }),
        /expired/,
      );
    });
  });

  describe('single use of the one-statement writes', () => {
    // Eight stores, so eight statements race in the database (one store would send them as one batch, below).
    it('lets exactly one of eight concurrent exchanges of one code claim it', async () => {
      const eight = Array.from({ length: 8 }, () => tokenStore(counted.db, stores.tokenTags));
      const code = await newCode();
      const results = await Promise.all(eight.map((tokens) => tokens.exchangeCode(exchangeOf(code), now)));
      const won = results.filter((r): r is IssuedTokens => r !== undefined);
      assert.equal(won.length, 1);
      const { grantId } = await codeRow(code);
      const prisma = counted.database.db.prisma;
      assert.equal(await prisma.accessToken.count({ where: { grantId } }), 1);
      assert.equal(await prisma.refreshToken.count({ where: { grantId } }), 1);
    });

    it('lets exactly one of eight concurrent rotations of one refresh token claim it, with one kept answer', async () => {
      const eight = Array.from({ length: 8 }, () => tokenStore(counted.db, stores.tokenTags));
      const first = await exchange({ client, params: exchangeParams(await newCode()), now });
      const presented = first.refreshToken as string;
      const results = await Promise.all(
        eight.map((tokens) => tokens.rotateRefresh(rotationOf(presented), now)),
      );
      assert.equal(results.filter((r) => r !== undefined).length, 1);
      const { id } = await refreshRow(presented);
      const prisma = counted.database.db.prisma;
      assert.equal(await prisma.refreshToken.count({ where: { parentId: id } }), 1);
      assert.equal(await prisma.refreshReplay.count({ where: { id } }), 1);
    });

    it('leaves the code and the refresh token unspent and nothing written when the write statement fails', async () => {
      const prisma = counted.database.db.prisma;
      const tokens = tokenStore(counted.db, stores.tokenTags);
      const code = await newCode();
      const first = await exchange({ client, params: exchangeParams(await newCode()), now });
      const presented = first.refreshToken as string;
      // The access token insert is the statement's last write: make it fail after the claim and the refresh token.
      await prisma.$executeRawUnsafe(`CREATE FUNCTION refuse_access_token() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused by the test'; END $$`);
      await prisma.$executeRawUnsafe(`CREATE TRIGGER refuse BEFORE INSERT ON access_tokens
        FOR EACH ROW EXECUTE FUNCTION refuse_access_token()`);
      try {
        await assert.rejects(tokens.exchangeCode(exchangeOf(code), now), /refused by the test/);
        await assert.rejects(tokens.rotateRefresh(rotationOf(presented), now), /refused by the test/);
      } finally {
        await prisma.$executeRawUnsafe('DROP TRIGGER refuse ON access_tokens');
        await prisma.$executeRawUnsafe('DROP FUNCTION refuse_access_token()');
      }
      const row = await codeRow(code);
      assert.equal(row.usedAt, null);
      assert.equal(await prisma.refreshToken.count({ where: { grantId: row.grantId } }), 0);
      const spent = await refreshRow(presented);
      assert.equal(spent.rotatedAt, null);
      assert.equal(spent.replay, null);
      assert.equal(await prisma.refreshToken.count({ where: { parentId: spent.id } }), 0);
      // Both still work afterwards.
      assert.ok(await tokens.exchangeCode(exchangeOf(code), now));
      assert.ok(await refresh({ client, params: new Params({ refresh_token: first.refreshToken }), now }));
    });

    it('claims nothing and writes nothing when the grant was revoked', async () => {
      const tokens = tokenStore(counted.db, stores.tokenTags);
      const code = await newCode();
      await stores.grants.revokeGrant((await codeRow(code)).grantId, 'user', now);
      assert.equal(await tokens.exchangeCode(exchangeOf(code), now), undefined);
      const prisma = counted.database.db.prisma;
      const row = await codeRow(code);
      assert.equal(row.usedAt, null, 'left for the transactional path to spend');
      assert.equal(await prisma.accessToken.count({ where: { grantId: row.grantId } }), 0);
      await assert.rejects(exchange({ client, params: exchangeParams(code), now }), /grant was revoked/);
    });
  });
  describe('requests that arrive together share their statements (group commit)', () => {
    it('exchanges eight distinct codes presented at once in one statement, each getting its own tokens', async () => {
      const codes = await Promise.all(Array.from({ length: 8 }, () => newCode()));
      const { result, statements } = await counting(() =>
        Promise.all(codes.map((code) => exchange({ client, params: exchangeParams(code), now }))),
      );
      assert.equal(statements.length, 1, statements.join('\n'));
      assert.equal(new Set(result.map((t) => t.accessToken)).size, 8);
      const prisma = counted.database.db.prisma;
      for (const [i, code] of codes.entries()) {
        const spent = await prisma.authorizationCode.findUniqueOrThrow({
          where: { codeHash: hashSecret(code) },
        });
        assert.deepEqual(spent.usedAt, now);
        const at = await prisma.accessToken.findUniqueOrThrow({
          where: { tokenHash: hashSecret(result[i]!.accessToken) },
        });
        const rt = await prisma.refreshToken.findUniqueOrThrow({
          where: { tokenHash: hashSecret(result[i]!.refreshToken as string) },
        });
        assert.equal(at.grantId, spent.grantId, 'each code’s tokens belong to its own grant');
        assert.equal(rt.grantId, spent.grantId);
        assert.equal(at.refreshTokenId, rt.id);
      }
    });

    it('rotates eight distinct refresh tokens presented at once in one statement, each keeping its answer', async () => {
      const firsts = await Promise.all(
        Array.from({ length: 8 }, async () =>
          exchange({ client, params: exchangeParams(await newCode()), now }),
        ),
      );
      const later = addSeconds(now, 10);
      const params = (t: IssuedTokens) => new Params({ refresh_token: t.refreshToken as string });
      const { result, statements } = await counting(() =>
        Promise.all(firsts.map((t) => refresh({ client, params: params(t), now: later }))),
      );
      assert.equal(statements.length, 1, statements.join('\n'));
      const prisma = counted.database.db.prisma;
      for (const [i, first] of firsts.entries()) {
        const old = await prisma.refreshToken.findUniqueOrThrow({
          where: { tokenHash: hashSecret(first.refreshToken as string) },
          include: { replay: true },
        });
        const children = await prisma.refreshToken.findMany({ where: { parentId: old.id } });
        assert.deepEqual(old.rotatedAt, later);
        assert.deepEqual(
          children.map((c) => c.tokenHash),
          [hashSecret(result[i]!.refreshToken as string)],
        );
        assert.deepEqual(old.replay?.expiresAt, addSeconds(later, CONFIG.refreshReuseWindow));
      }
      // Each kept answer opens only under its own token and is that token's pair (the reuse window).
      const retries = await Promise.all(
        firsts.map((t) => refresh({ client, params: params(t), now: addSeconds(later, 5) })),
      );
      assert.deepEqual(retries, result);
    });

    it('spends a code presented twice in one batch once: the first gets tokens, the second is a replay', async () => {
      const tokens = tokenStore(counted.db, stores.tokenTags);
      const code = await newCode();
      const [a, b] = await Promise.all([
        tokens.exchangeCode(exchangeOf(code), now),
        tokens.exchangeCode(exchangeOf(code), now),
      ]);
      assert.ok(a, 'the first member claims the code');
      assert.equal(b, undefined, 'the second loses, as it would lose a race');
      const { grantId } = await codeRow(code);
      const prisma = counted.database.db.prisma;
      assert.equal(await prisma.accessToken.count({ where: { grantId } }), 1);
      assert.equal(await prisma.refreshToken.count({ where: { grantId } }), 1);
    });

    it('through the grant handler, a code presented twice at once gets one answer and a replay that revokes the grant', async () => {
      const code = await newCode();
      const outcomes = await Promise.allSettled([
        exchange({ client, params: exchangeParams(code), now }),
        exchange({ client, params: exchangeParams(code), now }),
      ]);
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
      const refused = outcomes.find((o) => o.status === 'rejected');
      assert.match(String(refused?.reason), /authorization code was already used/);
      const prisma = counted.database.db.prisma;
      const row = await prisma.authorizationCode.findUniqueOrThrow({
        where: { codeHash: hashSecret(code) },
        include: { grant: true },
      });
      assert.equal(row.grant.revokedReason, 'code_replay', 'RFC 6749 §4.1.2');
    });

    it('a bad code among good ones fails alone: unknown, wrong verifier and good codes presented at once', async () => {
      const good = await Promise.all(Array.from({ length: 4 }, () => newCode()));
      const wrongVerifier = await newCode();
      const outcomes = await Promise.allSettled([
        ...good.map((code) => exchange({ client, params: exchangeParams(code), now })),
        exchange({ client, params: exchangeParams('lk_code_never-issued'), now }),
        exchange({ client, params: new Params({ code: wrongVerifier, code_verifier: 'x'.repeat(43) }), now }),
      ]);
      assert.deepEqual(
        outcomes.map((o) => o.status),
        ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected'],
      );
      assert.match(String((outcomes[4] as PromiseRejectedResult).reason), /authorization code is invalid/);
      assert.match(String((outcomes[5] as PromiseRejectedResult).reason), /code_verifier does not match/);
    });

    it('when the batch statement fails for one member, the others still get their tokens and the one fails alone', async () => {
      const prisma = counted.database.db.prisma;
      const tokens = tokenStore(counted.db, stores.tokenTags);
      // The third code's scope is refused by a trigger on its access token, so the shared statement fails.
      const codes = await Promise.all(
        Array.from({ length: 4 }, (_, i) => newCode(client, i === 2 ? ['refused'] : ['mcp'])),
      );
      await prisma.$executeRawUnsafe(`CREATE FUNCTION refuse_scope() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF 'refused' = ANY(NEW.scopes) THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`);
      await prisma.$executeRawUnsafe(`CREATE TRIGGER refuse_scope BEFORE INSERT ON access_tokens
        FOR EACH ROW EXECUTE FUNCTION refuse_scope()`);
      let outcomes: PromiseSettledResult<IssuedTokens | undefined>[];
      try {
        outcomes = await Promise.allSettled(codes.map((code) => tokens.exchangeCode(exchangeOf(code), now)));
      } finally {
        await prisma.$executeRawUnsafe('DROP TRIGGER refuse_scope ON access_tokens');
        await prisma.$executeRawUnsafe('DROP FUNCTION refuse_scope()');
      }
      assert.deepEqual(
        outcomes.map((o) => o.status),
        ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
      );
      for (const [i, o] of outcomes.entries())
        if (i !== 2) assert.ok((o as PromiseFulfilledResult<unknown>).value);
      assert.match(String((outcomes[2] as PromiseRejectedResult).reason), /refused by the test/);
      const row = await codeRow(codes[2] as string);
      assert.equal(row.usedAt, null, 'nothing half-written for the failing member');
      assert.equal(await prisma.accessToken.count({ where: { grantId: row.grantId } }), 0);
      assert.equal(await prisma.refreshToken.count({ where: { grantId: row.grantId } }), 0);
    });
  });
});
