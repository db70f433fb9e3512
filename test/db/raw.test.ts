// Database#raw, the driver's own query that the hot paths' raw statements take instead of Prisma's $queryRaw
// (store/introspection.ts, store/token-statements.ts): on both databases it reads rows as $queryRaw does (arrays,
// JSON, booleans, NULLs, and timestamps as UTC whatever the process's or the session's time zone), and on Postgres it
// prepares each SQL text once per connection under the same name Prisma's statements get, or leaves statements
// unnamed where preparing is off.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Database, openPostgres } from '../../src/db/database.ts';
import { isDatabaseUnavailable } from '../../src/db/unavailable.ts';
import { Prisma } from '../../src/generated/prisma/client.ts';
import { DB_KINDS, emptyDatabase, forEachDatabase, type TestDatabase } from '../helpers/db.ts';
import { recordStatements } from '../helpers/statement-count.ts';

/** Runs `fn` with the process's local time zone set to `zone` (Node reads TZ afresh when it changes). */
async function inTimeZone<T>(zone: string, fn: () => Promise<T>): Promise<T> {
  const before = process.env.TZ;
  process.env.TZ = zone;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.TZ;
    else process.env.TZ = before;
  }
}

forEachDatabase('raw statements', (kind) => {
  let t: TestDatabase;
  before(async () => {
    t = await emptyDatabase(kind);
  });
  after(() => t.cleanup());

  it('reads a timestamp as the UTC instant it holds, as $queryRaw does, in any local time zone', async () => {
    const instant = '2026-12-01T16:08:43.123Z';
    const statement = Prisma.sql`SELECT ${instant}::timestamp(3) AS at, ${instant}::timestamp(3) + interval '181 days' AS summer`;
    for (const zone of ['America/New_York', 'Asia/Kolkata', 'UTC']) {
      await inTimeZone(zone, async () => {
        // Local time must really differ from UTC here, or the check below would prove nothing.
        if (zone !== 'UTC') assert.notEqual(new Date(2026, 11, 1).getTimezoneOffset(), 0, zone);
        const [row] = await t.db.raw<{ at: Date; summer: Date }>(statement);
        assert.ok(row?.at instanceof Date, zone);
        assert.equal(row.at.toISOString(), instant, zone);
        assert.equal(row.summer.toISOString(), '2027-05-31T16:08:43.123Z', zone);
        const [viaPrisma] = await t.db.prisma.$queryRaw<{ at: Date }[]>(statement);
        assert.equal(viaPrisma?.at.toISOString(), row.at.toISOString(), zone);
      });
    }
  });

  it('passes and reads text arrays, JSON, booleans and NULLs as $queryRaw does', async () => {
    const scopes = ['mcp', 'a,b', 'quote"d', 'back\\slash', '{braced}', 'NULL', ''];
    const statement = Prisma.sql`
      SELECT ${scopes}::text[] AS scopes, ${'{"sub":"u1","n":[1,2]}'}::jsonb AS claims,
             ${'1'} <> '' AS flag, NULLIF(${''}, '') AS nothing, ARRAY[]::text[] AS empty, NULL::text[] AS none`;
    const rows = await t.db.raw<Record<string, unknown>>(statement);
    const viaPrisma = await t.db.prisma.$queryRaw<Record<string, unknown>[]>(statement);
    assert.deepEqual(rows, [
      { scopes, claims: { sub: 'u1', n: [1, 2] }, flag: true, nothing: null, empty: [], none: null },
    ]);
    assert.deepEqual(rows, viaPrisma);
  });

  it('fails a bad statement with the database error, which is not mistaken for the database being away', async () => {
    await assert.rejects(t.db.raw(Prisma.sql`SELECT no_such_column FROM (SELECT 1) AS x`), (err: unknown) => {
      assert.match((err as Error).message, /no_such_column/);
      assert.equal(isDatabaseUnavailable(err), false);
      return true;
    });
    // The connection it ran on is still good.
    assert.deepEqual(await t.db.raw(Prisma.sql`SELECT ${2}::int AS n`), [{ n: 2 }]);
  });
});

describe('raw statements on Postgres [postgres]', { skip: !DB_KINDS.includes('postgres') }, () => {
  let t: TestDatabase;
  before(async () => {
    t = await emptyDatabase('postgres');
  });
  after(() => t.cleanup());

  async function sent(db: Database, fn: () => Promise<unknown>) {
    const log = recordStatements();
    try {
      await fn();
    } finally {
      log.stop();
      await db.close();
    }
    return log.sent.filter((s) => s.text.includes('AS raw_n'));
  }

  it('prepares each SQL text once under the name Prisma gives that text', async () => {
    const db = openPostgres({ url: t.url as string, poolSize: 1 });
    const statement = (n: number) => Prisma.sql`SELECT ${n}::int AS raw_n`;
    const statements = await sent(db, async () => {
      for (const n of [1, 2]) assert.deepEqual(await db.raw(statement(n)), [{ raw_n: n }]);
      await db.prisma.$queryRaw(statement(3));
    });
    assert.equal(statements.length, 3);
    assert.match(statements[0]?.name ?? '', /^lk_[0-9a-f]{32}$/);
    assert.deepEqual(
      statements.map((s) => s.name),
      [0, 1, 2].map(() => statements[0]?.name),
    );
  });

  it('sends statements unnamed when preparing is off', async () => {
    const db = openPostgres({ url: t.url as string, poolSize: 1, prepared: false });
    const statements = await sent(db, async () => {
      for (const n of [1, 2])
        assert.deepEqual(await db.raw(Prisma.sql`SELECT ${n}::int AS raw_n`), [{ raw_n: n }]);
    });
    assert.deepEqual(
      statements.map((s) => s.name),
      [undefined, undefined],
    );
  });
});
