// Telling a database outage from a bug (src/db/unavailable.ts): errors that name the connection (unreachable,
// terminated, closed, the pool starved) are answered 503 temporarily_unavailable with Retry-After on the API and
// the 503 page on pages (RFC 6749 §5.2, RFC 9110 §15.6.4); every other failure (a constraint violated, a table
// missing, bad SQL, a thrown TypeError) stays a 500 server_error. The errors are real ones, made by real databases.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { type Database, openPostgres } from '../../src/db/database.ts';
import { pgliteDatabase } from '../../src/db/pglite.ts';
import { isDatabaseUnavailable } from '../../src/db/unavailable.ts';
import { randomToken } from '../../src/lib/crypto.ts';
import { invalidRequest } from '../../src/oauth/errors.ts';
import { basicAuth } from '../helpers/basic-auth.ts';
import { databaseThroughProxy, forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';
import { postForm, refreshToken } from '../helpers/flow.ts';
import { freePort, TcpProxy } from '../helpers/net.ts';
import { addClient, addResourceServer, startServer, type TestServer } from '../helpers/server.ts';

/** The error `p` rejects with. */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected a rejection');
}

forEachDatabase('telling a database outage from a bug', (kind) => {
  let t: TestDatabase;
  before(async () => {
    t = await migratedDatabase(kind);
  });
  after(() => t.cleanup());

  it('counts an unreachable or closed database as unavailable, for queries, transactions and raw SQL', async () => {
    let gone: Database;
    if (kind === 'pglite') {
      gone = pgliteDatabase(await PGlite.create());
      await gone.close();
    } else {
      // Nothing listens on this port: every connection is refused.
      gone = openPostgres({ url: `postgres://postgres@127.0.0.1:${await freePort()}/none`, poolSize: 2 });
    }
    try {
      const errors = [
        await failure(gone.prisma.user.findFirst()),
        await failure(gone.prisma.$transaction(async (tx) => tx.user.count())),
        await failure(gone.prisma.$queryRawUnsafe('SELECT 1')),
        await failure(gone.withConnection((c) => c.query('SELECT 1'))),
      ];
      for (const err of errors) assert.ok(isDatabaseUnavailable(err), String(err));
    } finally {
      if (kind === 'postgres') await gone.close();
    }
  });

  it('counts a starved connection pool as unavailable: a transaction that cannot start within maxWait', async (c) => {
    if (kind === 'pglite') return c.skip('PGlite is one connection, serialised by its own lock');
    const small = openPostgres({ url: t.url!, poolSize: 1 });
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding!: () => void;
    const isHeld = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const holder = small.withConnection(async (conn) => {
      await conn.query('SELECT 1');
      holding();
      await held;
    });
    try {
      await isHeld;
      const err = await failure(small.prisma.$transaction(async (tx) => tx.user.count(), { maxWait: 50 }));
      assert.ok(isDatabaseUnavailable(err), String(err));
    } finally {
      release();
      await holder;
      await small.close();
    }
  });

  it('counts a constraint violation, a missing table, bad SQL and a TypeError as bugs, not outages', async () => {
    const email = `dup-${randomToken(4)}@example.com`;
    await t.db.prisma.user.create({ data: { email, name: 'A' } });
    const errors = [
      await failure(t.db.prisma.user.create({ data: { email, name: 'B' } })),
      await failure(t.db.prisma.$queryRawUnsafe('SELECT * FROM "no_such_table"')),
      await failure(t.db.prisma.$queryRawUnsafe('SELEC 1')),
      await failure(t.db.withConnection((c) => c.query('SELECT 1/0'))),
      new TypeError("Cannot read properties of undefined (reading 'id')"),
      invalidRequest('client_id is required'),
      undefined,
      'Connection terminated unexpectedly',
    ];
    for (const err of errors) assert.equal(isDatabaseUnavailable(err), false, String(err));
  });

  it('recognises what it cannot provoke here by the shapes pg and Prisma give it: a starved pool, a server shutting down', () => {
    assert.ok(isDatabaseUnavailable(new Error('timeout exceeded when trying to connect')));
    assert.ok(isDatabaseUnavailable(Object.assign(new Error('pool timeout'), { code: 'P2024' })));
    const p2028 = (message: string) =>
      Object.assign(new Error(`Transaction API error: ${message}`), { code: 'P2028' });
    assert.ok(isDatabaseUnavailable(p2028('Unable to start a transaction in the given time.')));
    assert.ok(
      isDatabaseUnavailable(
        p2028(
          'A query cannot be executed on an expired transaction. The timeout for this transaction was 5000 ms',
        ),
      ),
    );
    assert.equal(
      isDatabaseUnavailable(p2028('Transaction not found.')),
      false,
      'a misused transaction is a bug',
    );
    const shutdown = Object.assign(new Error('terminating connection due to administrator command'), {
      code: '57P01',
      severity: 'FATAL',
    });
    assert.ok(isDatabaseUnavailable(shutdown));
    assert.ok(isDatabaseUnavailable(new Error('wrapped', { cause: shutdown })));
    const loop: { message: string; cause?: unknown } = { message: 'a cause chain that loops' };
    loop.cause = loop;
    assert.equal(isDatabaseUnavailable(loop), false);
  });
});

forEachDatabase('answers while the database is unavailable', (kind) => {
  let server: TestServer;
  let database: TestDatabase;
  const proxy = new TcpProxy('127.0.0.1', 5432);
  let dropDatabase: (() => Promise<void>) | undefined;

  before(async () => {
    // On Postgres, through a proxy this test cuts; the shared server itself is never touched.
    ({ database, drop: dropDatabase } = await databaseThroughProxy(kind, proxy));
    server = await startServer(kind, { database });
  });
  after(async () => {
    await server.close();
    await database.cleanup();
    await proxy.close();
    await dropDatabase?.();
  });

  /** Makes the database unreachable: PGlite closed, or every Postgres connection dropped. */
  async function takeDatabaseAway() {
    if (kind === 'pglite') await database.db.close();
    else await proxy.cut();
  }

  it('keeps a broken schema a 500, and then answers 503 with Retry-After on the API and the 503 page on a page', async () => {
    const client = await addClient(server.stores);
    const rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    await database.db.withConnection((c) => c.exec('DROP TABLE "rate_limits"'));
    const broken = await postForm(`${server.url}/register`, {});
    assert.equal(broken.status, 500, JSON.stringify(broken.body));
    assert.equal(broken.body.error, 'server_error');
    assert.equal(broken.headers.get('retry-after'), null);

    await takeDatabaseAway();
    const token = await refreshToken(server, client, randomToken(32, 'lk_rt_'));
    assert.equal(token.status, 503, JSON.stringify(token.body));
    assert.deepEqual(Object.keys(token.body).sort(), ['error', 'error_description']);
    assert.equal(token.body.error, 'temporarily_unavailable');
    assert.equal(token.headers.get('retry-after'), '5');
    assert.equal(token.headers.get('cache-control'), 'no-store');
    const introspection = await postForm(
      `${server.url}/introspect`,
      { token: randomToken(32, 'lk_at_') },
      { authorization: basicAuth(rs.clientId, rs.clientSecret) },
    );
    assert.equal(introspection.status, 503);
    assert.equal(introspection.body.error, 'temporarily_unavailable');

    const path = `/authorize?client_id=${randomToken(8)}&response_type=code`;
    const page = await fetch(`${server.url}${path}`);
    const html = await page.text();
    assert.equal(page.status, 503);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(page.headers.get('retry-after'), '5');
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    assert.match(html, /<h1>Latchkey is briefly unavailable<\/h1>/);
    assert.ok(html.includes(`href="${path.replace(/&/g, '&amp;')}"`), 'a GET page offers to try again');
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });
});
