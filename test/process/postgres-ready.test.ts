// Acceptance 2 (issue 2): with DATABASE_URL the same start migrates a new Postgres database and serves; /readyz
// answers 503 while the database is unreachable and 200 again once it is back, without a restart. The database is
// cut away by a TCP proxy this test owns; the machine's Postgres is never touched.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { loadMigrations } from '../../src/db/migrate.ts';
import { createPostgresDatabase } from '../helpers/db.ts';
import { TcpProxy } from '../helpers/net.ts';
import { retryOnEvent, type ServerProcess, spawnServer, statusOf } from '../helpers/server-process.ts';

describe('the server on PostgreSQL (DATABASE_URL)', () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  const proxy = new TcpProxy('127.0.0.1', 5432);
  let server: ServerProcess | undefined;
  let url: string;

  before(async () => {
    database = await createPostgresDatabase();
    await proxy.open();
  });
  after(async () => {
    await server?.stop();
    await proxy.close();
    await database.drop();
  });

  it('migrates a new database at start and answers /readyz 200', async () => {
    const through = new URL(database.url);
    through.port = String(proxy.port);
    server = spawnServer({ env: { DATABASE_URL: through.href } });
    url = await server.listening;
    assert.equal(await statusOf(url, '/readyz'), 200);
    assert.deepEqual(await fetch(`${url}/readyz`).then((r) => r.json()), {
      status: 'ready',
      database: 'postgres',
    });

    const expected = (await loadMigrations()).map((m) => m.name);
    const applied = server
      .logs()
      .filter((l) => l.msg === 'migration applied')
      .map((l) => l.migration);
    assert.deepEqual(applied, expected);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const rows = await client.query<{ migration_name: string }>(
        'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL ORDER BY migration_name',
      );
      assert.deepEqual(
        rows.rows.map((r) => r.migration_name),
        expected,
      );
    } finally {
      await client.end();
    }
  });

  it('answers /readyz 503 while the database is cut away, /healthz 200 all along, and 200 again once it is back', async () => {
    assert.ok(proxy.connections > 0, 'the server holds connections through the proxy');
    await proxy.cut();
    // Each try waits for the answer to /readyz. Until the server notices its pooled connections are gone, a try may
    // still answer 200; the next try follows the server's next attempt to reach the database (which the proxy drops)
    // or a quarter second, whichever comes first, for at most 30 s: bounded, and not a race against a busy machine.
    assert.ok(
      await retryOnEvent(
        async () => (await statusOf(url, '/readyz')) === 503,
        () => proxy.nextConnection(250).catch(() => {}),
        120,
      ),
      '/readyz turns 503 while the database is unreachable',
    );
    assert.equal(await statusOf(url, '/healthz'), 200);
    assert.deepEqual(await fetch(`${url}/readyz`).then((r) => r.json()), {
      status: 'unavailable',
      database: 'postgres',
    });

    await proxy.open(); // same port: the server's DATABASE_URL is unchanged
    // /readyz opens a new connection, which the proxy now pipes. A pooled connection the server had not yet seen die
    // would answer one 503 and be discarded, so a try is repeated as soon as the one before has been answered.
    assert.ok(
      await retryOnEvent(
        async () => (await statusOf(url, '/readyz')) === 200,
        async () => {},
        10,
      ),
      '/readyz is 200 again without a restart',
    );
    assert.equal(await statusOf(url, '/healthz'), 200);
    assert.equal(server?.child.exitCode, null, 'the server kept running');
    assert.deepEqual(await server?.stop(), { code: 0, signal: null });
  });
});
