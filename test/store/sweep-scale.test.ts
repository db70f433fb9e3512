// Sweeping at scale (README: How it is built): a backlog of 100,000 expired rows goes away over several bounded runs, each
// run stopping between batches when its time is up and the next one continuing, and what live refresh tokens need
// (their grants) stays. Runs here are bounded by a count of batches instead of a clock, so the test does not depend
// on the machine's speed.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, it } from 'node:test';
import pino from 'pino';
import { hashSecret } from '../../src/lib/crypto.ts';
import { emptyResult, type SweepCursor, type SweepResult, sweepRun } from '../../src/store/sweep.ts';
import { sweepOnce } from '../../src/sweeper.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';

// Expired grants, each with an expired code, access token and refresh token: 4 rows apiece.
const EXPIRED_GRANTS = 25_000;
// Old grants a live refresh token still needs; each also has an expired access token and an expired rotated parent.
const LIVE_GRANTS = 200;
const DAY = 86_400_000;

forEachDatabase('sweeping a large backlog', (kind) => {
  let t: TestDatabase;
  const now = new Date('2026-11-30T12:00:00.000Z');
  const old = new Date(now.getTime() - 40 * DAY);
  before(async () => {
    t = await migratedDatabase(kind);
    const prisma = t.db.prisma;
    const user = await prisma.user.create({ data: { email: 'scale@example.com' } });
    const client = await prisma.client.create({
      data: {
        clientId: 'scale-client',
        kind: 'OPERATOR',
        name: 'scale',
        redirectUris: ['http://127.0.0.1:9/cb'],
        grantTypes: ['authorization_code', 'refresh_token'],
        responseTypes: ['code'],
      },
    });
    const rs = await prisma.resourceServer.create({
      data: {
        uri: 'https://mcp.example.com/mcp',
        name: 'scale',
        clientId: 'rs-scale',
        secretHash: hashSecret('x'),
      },
    });
    // generate_series makes the backlog in a few statements. Distinct timestamps, as real traffic has.
    const grants = (n: number, tag: string) => `
      INSERT INTO grants (id, user_id, client_id, resource_server_id, scopes, redirect_uri, created_at, revoked_reason)
      SELECT gen_random_uuid(), '${user.id}', '${client.id}', '${rs.id}', '{mcp}', 'http://127.0.0.1:9/cb',
        '${old.toISOString()}'::timestamp(3) + i * interval '1 ms', '${tag}'
      FROM generate_series(1, ${n}) i;`;
    await t.db.withConnection((c) =>
      c.exec(`
        ${grants(EXPIRED_GRANTS, 'expired')}
        ${grants(LIVE_GRANTS, 'live')}
        INSERT INTO authorization_codes (id, code_hash, grant_id, user_id, client_id, resource_server_id, redirect_uri,
          code_challenge, scopes, created_at, expires_at, used_at)
        SELECT gen_random_uuid(), 'c' || g.id, g.id, g.user_id, g.client_id, g.resource_server_id, g.redirect_uri, 'x',
          g.scopes, g.created_at, g.created_at + interval '1 minute', g.created_at
        FROM grants g WHERE g.revoked_reason = 'expired';
        INSERT INTO access_tokens (id, token_hash, grant_id, scopes, created_at, expires_at)
        SELECT gen_random_uuid(), 'a' || g.id, g.id, g.scopes, g.created_at, g.created_at + interval '1 hour' FROM grants g;
        INSERT INTO refresh_tokens (id, token_hash, grant_id, scopes, created_at, expires_at, rotated_at)
        SELECT gen_random_uuid(), 'r' || g.id, g.id, g.scopes, g.created_at, g.created_at + interval '30 days',
          CASE WHEN g.revoked_reason = 'live' THEN g.created_at + interval '20 days' END
        FROM grants g;
        INSERT INTO refresh_tokens (id, token_hash, grant_id, parent_id, scopes, created_at, expires_at)
        SELECT gen_random_uuid(), 'l' || r.grant_id, r.grant_id, r.id, r.scopes, r.created_at + interval '20 days',
          '${now.toISOString()}'::timestamp(3) + interval '10 days'
        FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE g.revoked_reason = 'live';
        UPDATE grants SET revoked_reason = NULL;
      `),
    );
  });
  after(() => t.cleanup());

  it('removes a 100,000-row backlog over several bounded runs and keeps the grants live refresh tokens need', async () => {
    const prisma = t.db.prisma;
    const expiredRows = (await prisma.authorizationCode.count()) + (await prisma.accessToken.count());
    assert.equal(expiredRows + (await prisma.grant.count()) - LIVE_GRANTS, 3 * EXPIRED_GRANTS + LIVE_GRANTS);
    assert.equal(await prisma.refreshToken.count(), EXPIRED_GRANTS + 2 * LIVE_GRANTS);

    const total: SweepResult = emptyResult();
    const cursor: SweepCursor = {};
    let runs = 0;
    for (let complete = false; !complete; ) {
      runs++;
      assert.ok(runs < 1000, 'the sweep makes progress from run to run');
      // A run's "time" is 30 batch statements (a run with nothing to delete makes 15, one per phase).
      let batches = 0;
      const run = await sweepRun(prisma, now, 86400, { cursor, outOfTime: () => ++batches > 30 });
      for (const [k, v] of Object.entries(run.removed)) total[k as keyof SweepResult] += v;
      complete = run.complete;
    }
    assert.ok(runs >= 3, `a backlog this size takes several runs (took ${runs})`);
    assert.equal(total.authorizationCodes, EXPIRED_GRANTS);
    assert.equal(total.accessTokens, EXPIRED_GRANTS + LIVE_GRANTS);
    assert.equal(
      total.refreshTokens,
      EXPIRED_GRANTS + LIVE_GRANTS,
      'expired refresh tokens, rotated parents included',
    );
    assert.equal(total.grants, EXPIRED_GRANTS);
    assert.ok(
      Object.values(total).reduce((a, b) => a + b, 0) >= 100_000,
      'at least 100,000 expired rows were swept',
    );

    // What is left: the live refresh tokens and exactly their grants.
    assert.equal(await prisma.authorizationCode.count(), 0);
    assert.equal(await prisma.accessToken.count(), 0);
    const live = await prisma.refreshToken.findMany({
      select: { grantId: true, expiresAt: true, parentId: true },
    });
    assert.equal(live.length, LIVE_GRANTS);
    assert.ok(live.every((r) => r.expiresAt > now));
    // Their rotated parents are gone. The lineage id stays as a record of them: it is no foreign key (schema.prisma).
    const parents = live.map((r) => r.parentId).filter((id) => id !== null);
    assert.equal(parents.length, LIVE_GRANTS);
    assert.equal(await prisma.refreshToken.count({ where: { id: { in: parents } } }), 0);
    const kept = await prisma.grant.findMany({ select: { id: true } });
    assert.deepEqual(new Set(kept.map((g) => g.id)), new Set(live.map((r) => r.grantId)));

    // Nothing is left to find, and a fresh walk (no cursor) agrees.
    const again = await sweepRun(prisma, now, 86400, {});
    assert.equal(again.complete, true);
    assert.equal(
      Object.values(again.removed).reduce((a, b) => a + b, 0),
      0,
    );
  });

  it('a walk cut short keeps its place: grants it has passed are not looked at again until it reaches the end', async () => {
    const prisma = t.db.prisma;
    const cursor: SweepCursor = {};
    let batches = 0;
    // Batches of 50 over the 200 kept grants: the run stops after the walk's second batch.
    const first = await sweepRun(prisma, now, 86400, { cursor, batch: 50, outOfTime: () => ++batches > 6 });
    assert.equal(first.complete, false);
    assert.ok(cursor.grants, 'the cursor holds the last grant looked at');
    const passed = await prisma.grant.count({
      where: { createdAt: { lte: new Date(`${cursor.grants.createdAt.replace(' ', 'T')}Z`) } },
    });
    assert.ok(passed > 0 && passed < LIVE_GRANTS, `${passed} grants passed`);
    // An empty grant the walk has already passed is left for the next walk; this one finishes the current walk.
    const empty = await prisma.grant.findFirstOrThrow({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
    await prisma.refreshToken.deleteMany({ where: { grantId: empty.id } });
    const second = await sweepRun(prisma, now, 86400, { cursor, batch: 50 });
    assert.equal(second.complete, true);
    assert.equal(second.removed.grants, 0);
    assert.equal(cursor.grants, undefined, 'the walk reached the end');
    const third = await sweepRun(prisma, now, 86400, { cursor, batch: 50 });
    assert.equal(third.removed.grants, 1);
    assert.equal(await prisma.grant.count({ where: { id: empty.id } }), 0);
  });

  it('the sweeper says when a run ran out of time, so that it starts the next one soon (src/sweeper.ts)', async () => {
    const logged: { msg: string; complete?: boolean }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) logged.push(JSON.parse(l));
        done();
      },
    });
    const logger = pino({ level: 'info' }, sink);
    const clock = { now: () => now };
    assert.equal(
      await sweepOnce(t.db, { unusedClientTtl: 86400, auditRetention: 86400 }, clock, logger, undefined, {
        budgetMs: -1,
      }),
      false,
    );
    assert.equal(logged[0]?.msg, 'swept expired rows');
    assert.equal(logged[0]?.complete, false);
    assert.equal(
      await sweepOnce(t.db, { unusedClientTtl: 86400, auditRetention: 86400 }, clock, logger),
      true,
      'with time, it finishes',
    );
  });
});
