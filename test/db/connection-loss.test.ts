// A Postgres connection that dies while it is in use fails the work under way and nothing else: the process must not
// crash on pg's 'error' event (pg-pool removes its own listener from a client in use). Through a TCP proxy the test
// cuts, as a network failure or a database restart would.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Database, openPostgres } from '../../src/db/database.ts';
import { createPostgresDatabase, DB_KINDS } from '../helpers/db.ts';
import { TcpProxy } from '../helpers/net.ts';

describe('a Postgres connection lost while in use [postgres]', {
  skip: !DB_KINDS.includes('postgres'),
}, () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  const proxy = new TcpProxy('127.0.0.1', 5432);
  let db: Database;

  before(async () => {
    database = await createPostgresDatabase();
    await proxy.open();
    const through = new URL(database.url);
    through.port = String(proxy.port);
    db = openPostgres({ url: through.href, poolSize: 2 });
  });
  after(async () => {
    await db.close();
    await proxy.close();
    await database.drop();
  });

  it('fails the query under way, keeps the process up, and works again once the database is back', async () => {
    // The connection is open (its first query answered) and a second query is under way when it is cut.
    let underWay!: () => void;
    const cutNow = new Promise<void>((resolve) => {
      underWay = resolve;
    });
    const running = db.withConnection(async (c) => {
      await c.query('SELECT 1');
      const sleeping = c.query('SELECT pg_sleep(30)');
      underWay();
      return sleeping;
    });
    await cutNow;
    await proxy.cut();
    await assert.rejects(running, /ECONNRESET|Connection terminated unexpectedly/);
    await assert.rejects(db.ping(2000));

    await proxy.open();
    await db.ping(10_000);
    assert.deepEqual(await db.withConnection((c) => c.query('SELECT 1 AS one')), [{ one: 1 }]);
  });
});
