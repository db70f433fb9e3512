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

/** What the store-level tests below mint: a pair, as a code exchange or rotation of a client with refresh does. */
const issue: TokenIssue = {
  accessScopes: ['mcp'],
  refreshScopes: ['mcp'],
  parentRefreshId: null,
  accessTokenTtl: 60,
  refreshTokenTtl: 600,
};

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
    // Eight stores, so eight statements race in the database (one store would send them as one batch, below).
    it('lets exactly one of eight concurrent exchanges of one code claim it', async () => {
      const eight = Array.from({ length: 8 }, () => tokenStore(counted.prisma, stores.tokenTags));
      const facts = await eight[0]!.findCode(await newCode());
      assert.ok(facts);
      const results = await Promise.all(eight.map((tokens) => tokens.exchangeCode(facts, issue, now)));
      const won = results.filter((r): r is IssuedTokens => r !== undefined);
      assert.equal(won.length, 1);
      const prisma = counted.database.db.prisma;
      assert.equal(await prisma.accessToken.count({ where: { grantId: facts.grantId } }), 1);
      assert.equal(await prisma.refreshToken.count({ where: { grantId: facts.grantId } }), 1);
    });

    it('lets exactly one of eight concurrent rotations of one refresh token claim it, with one kept answer', async () => {
      const eight = Array.from({ length: 8 }, () => tokenStore(counted.prisma, stores.tokenTags));
      const first = await exchange({ client, params: exchangeParams(await newCode()), now });
      const presented = first.refreshToken as string;
      const facts = await eight[0]!.findRefresh(presented);
      assert.ok(facts);
      const keep = { presented, until: addSeconds(now, 60) };
      const next = { ...issue, parentRefreshId: facts.id };
      const results = await Promise.all(eight.map((tokens) => tokens.rotateRefresh(facts, next, keep, now)));
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
  describe('requests that arrive together share their statements (group commit)', () => {
    it('exchanges eight distinct codes presented at once in one read and one write, each getting its own tokens', async () => {
      const codes = await Promise.all(Array.from({ length: 8 }, () => newCode()));
      const { result, statements } = await counting(() =>
        Promise.all(codes.map((code) => exchange({ client, params: exchangeParams(code), now }))),
      );
      assert.equal(statements.length, 2, statements.join('\n'));
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

    it('rotates eight distinct refresh tokens presented at once in one read and one write, each keeping its answer', async () => {
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
      assert.equal(statements.length, 2, statements.join('\n'));
      const prisma = counted.database.db.prisma;
      for (const [i, first] of firsts.entries()) {
        const old = await prisma.refreshToken.findUniqueOrThrow({
          where: { tokenHash: hashSecret(first.refreshToken as string) },
          include: { children: true, replay: true },
        });
        assert.deepEqual(old.rotatedAt, later);
        assert.equal(old.children[0]?.tokenHash, hashSecret(result[i]!.refreshToken as string));
        assert.deepEqual(old.replay?.expiresAt, addSeconds(later, CONFIG.refreshReuseWindow));
      }
      // Each kept answer opens only under its own token and is that token's pair (the reuse window).
      const retries = await Promise.all(
        firsts.map((t) => refresh({ client, params: params(t), now: addSeconds(later, 5) })),
      );
      assert.deepEqual(retries, result);
    });

    it('spends a code presented twice in one batch once: the first gets tokens, the second is a replay', async () => {
      const tokens = tokenStore(counted.prisma, stores.tokenTags);
      const facts = await tokens.findCode(await newCode());
      assert.ok(facts);
      const [a, b] = await Promise.all([
        tokens.exchangeCode(facts, issue, now),
        tokens.exchangeCode(facts, issue, now),
      ]);
      assert.ok(a, 'the first member claims the code');
      assert.equal(b, undefined, 'the second loses, as it would lose a race');
      const prisma = counted.database.db.prisma;
      assert.equal(await prisma.accessToken.count({ where: { grantId: facts.grantId } }), 1);
      assert.equal(await prisma.refreshToken.count({ where: { grantId: facts.grantId } }), 1);
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
      const tokens = tokenStore(counted.prisma, stores.tokenTags);
      const facts = await Promise.all(
        Array.from({ length: 4 }, async () => tokens.findCode(await newCode())),
      );
      // A trigger refuses the access token of one member only (by its scope), so the shared statement fails.
      await prisma.$executeRawUnsafe(`CREATE FUNCTION refuse_scope() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF 'refused' = ANY(NEW.scopes) THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`);
      await prisma.$executeRawUnsafe(`CREATE TRIGGER refuse_scope BEFORE INSERT ON access_tokens
        FOR EACH ROW EXECUTE FUNCTION refuse_scope()`);
      let outcomes: PromiseSettledResult<IssuedTokens | undefined>[];
      try {
        outcomes = await Promise.allSettled(
          facts.map((f, i) =>
            tokens.exchangeCode(
              f as NonNullable<typeof f>,
              i === 2 ? { ...issue, accessScopes: ['refused'] } : issue,
              now,
            ),
          ),
        );
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
      const refused = facts[2] as NonNullable<(typeof facts)[2]>;
      const row = await prisma.authorizationCode.findUniqueOrThrow({ where: { id: refused.id } });
      assert.equal(row.usedAt, null, 'nothing half-written for the failing member');
      assert.equal(await prisma.accessToken.count({ where: { grantId: refused.grantId } }), 0);
      assert.equal(await prisma.refreshToken.count({ where: { grantId: refused.grantId } }), 0);
    });
  });
});
