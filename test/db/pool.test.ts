// DATABASE_POOL_SIZE reaches the Postgres pool, a bad value is refused naming it, and Prisma's statements go to
// Postgres as named prepared statements (parsed once per connection), up to a bound.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/open.ts';
import { statementNamer } from '../../src/db/statement-names.ts';
import { createPostgresDatabase, DB_KINDS } from '../helpers/db.ts';
import { recordStatements } from '../helpers/statement-count.ts';

describe('DATABASE_POOL_SIZE', () => {
  it('defaults to 10 and reads a whole number', () => {
    assert.equal(loadConfig({}).databasePoolSize, 10);
    assert.equal(loadConfig({ DATABASE_POOL_SIZE: '4' }).databasePoolSize, 4);
  });

  it('refuses a value that is not a whole number from 1 to 500, naming the variable', () => {
    for (const bad of ['0', '501', 'ten', '-3', '2.5']) {
      assert.throws(
        () => loadConfig({ DATABASE_POOL_SIZE: bad }),
        (err: unknown) =>
          err instanceof ConfigError && /DATABASE_POOL_SIZE/.test(err.message) && err.message.includes(bad),
        bad,
      );
    }
  });
});

describe('the Postgres pool [postgres]', { skip: !DB_KINDS.includes('postgres') }, () => {
  let created: Awaited<ReturnType<typeof createPostgresDatabase>>;
  before(async () => {
    created = await createPostgresDatabase();
  });
  after(() => created.drop());

  it('opens at most DATABASE_POOL_SIZE connections', async () => {
    const db = await openDatabase(loadConfig({ DATABASE_URL: created.url, DATABASE_POOL_SIZE: '3' }));
    try {
      assert.equal(db.poolStats?.().max, 3);
      await Promise.all(
        Array.from({ length: 12 }, () => db.prisma.$queryRaw`SELECT 1 AS n FROM pg_sleep(0.01)`),
      );
      const stats = db.poolStats?.();
      assert.ok(stats && stats.total <= 3 && stats.total >= 1, JSON.stringify(stats));
    } finally {
      await db.close();
    }
  });

  it('sends Prisma statements as named prepared statements, one name per SQL text', async () => {
    const db = await openDatabase(loadConfig({ DATABASE_URL: created.url, DATABASE_POOL_SIZE: '1' }));
    const log = recordStatements();
    try {
      for (const n of [1, 2]) await db.prisma.$queryRaw`SELECT ${n}::int AS n`;
    } finally {
      log.stop();
      await db.close();
    }
    const selects = log.sent.filter((s) => s.text.startsWith('SELECT $1::int'));
    assert.equal(selects.length, 2);
    assert.match(selects[0]!.name ?? '', /^lk_[0-9a-f]{32}$/);
    assert.equal(selects[1]!.name, selects[0]!.name);
  });
});

describe('statement names', () => {
  it('names each SQL text the same way, and stops naming new texts past the bound', () => {
    const name = statementNamer(2);
    const a = name({ sql: 'SELECT 1' });
    assert.equal(name({ sql: 'SELECT 1' }), a);
    assert.notEqual(name({ sql: 'SELECT 2' }), a);
    assert.equal(name({ sql: 'SELECT 3' }), undefined, 'past the bound: unnamed');
    assert.equal(name({ sql: 'SELECT 1' }), a, 'known texts keep their name');
  });
});
