// The embedded database belongs to one process (README: CLI). Its directory is locked: a second opener fails at
// once, naming the holder; a lock left by a dead process is taken over. Local commands reach a running server's
// database through the Unix socket in DATA_DIR, and whatever they and the server write at the same time is kept.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  DataDirInUseError,
  type EmbeddedDatabase,
  LOCK_FILE,
  openEmbedded,
  SOCKET_FILE,
  SOCKET_PORT,
} from '../../src/db/embedded.ts';
import { migrate } from '../../src/db/migrate.ts';
import { type ServerProcess, spawnServer, waitUntilReady } from '../helpers/server-process.ts';

let dataDir: string;
before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'latchkey-embedded-'));
});
after(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** The pid of a process that has exited (so it is certainly not holding anything). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `p` settles or `ms` pass, whichever is first, without failing either way. */
async function settledOrAfter(p: Promise<unknown>, ms: number): Promise<void> {
  await Promise.race([
    p.then(
      () => {},
      () => {},
    ),
    sleep(ms),
  ]);
}

/** Rejects if `p` has not settled within `ms`: a stalled socket must fail the test, not hang it. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe('data directory lock', () => {
  it('makes a second opener fail at once with DataDirInUseError naming the holder, until the first closes', async () => {
    const first = await openEmbedded({ dataDir });
    try {
      assert.equal((await readFile(join(dataDir, LOCK_FILE), 'utf8')).trim(), String(process.pid));
      const started = Date.now();
      await assert.rejects(openEmbedded({ dataDir }), (err: unknown) => {
        assert.ok(err instanceof DataDirInUseError, `a DataDirInUseError, got ${String(err)}`);
        assert.equal(err.pid, process.pid);
        assert.equal(err.dataDir, dataDir);
        assert.ok(err.message.includes(`${dataDir} is in use by process ${process.pid}`), err.message);
        return true;
      });
      // At once: refused on the lock, before any database start-up (which takes seconds).
      assert.ok(Date.now() - started < 1000, `refused after ${Date.now() - started} ms`);
    } finally {
      await first.close();
    }
    assert.equal(await exists(join(dataDir, LOCK_FILE)), false, 'closing removes the lock');
    const again = await openEmbedded({ dataDir });
    await again.close();
  });

  it('takes over a lock left by a process that is no longer running', async () => {
    const pid = await deadPid();
    await writeFile(join(dataDir, LOCK_FILE), `${pid}\n`);
    const db = await openEmbedded({ dataDir });
    try {
      assert.equal((await readFile(join(dataDir, LOCK_FILE), 'utf8')).trim(), String(process.pid));
      assert.deepEqual(await db.withConnection((c) => c.query('SELECT 1 AS one')), [{ one: 1 }]);
    } finally {
      await db.close();
    }
    assert.equal(await exists(join(dataDir, LOCK_FILE)), false);
  });
});

describe('start parameters', () => {
  it('runs with 32 MB of shared buffers, on a first start from the template and on a later start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'latchkey-embedded-buffers-'));
    try {
      for (const start of ['first', 'later']) {
        const db = await openEmbedded({ dataDir: dir });
        try {
          const rows = await db.withConnection((c) =>
            c.query<{ shared_buffers: string }>('SHOW shared_buffers'),
          );
          assert.deepEqual(rows, [{ shared_buffers: '32MB' }], `${start} start`);
        } finally {
          await db.close();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('socket for local commands', () => {
  let db: EmbeddedDatabase;
  const clients: pg.Client[] = [];
  /** A connected `pg` client on DATA_DIR/.s.PGSQL.5432, closed after the suite. */
  async function socketClient(): Promise<pg.Client> {
    // pg treats a directory host as the place of the Unix socket `.s.PGSQL.<port>`.
    const c = new pg.Client({ host: dataDir, port: SOCKET_PORT, user: 'postgres', database: 'postgres' });
    // Closing the database ends these connections; that is expected, not an unhandled error.
    c.on('error', () => {});
    await c.connect();
    clients.push(c);
    return c;
  }
  const keys = async (prefix: string) =>
    (
      await db.prisma.rateLimit.findMany({ where: { key: { startsWith: prefix } }, orderBy: { key: 'asc' } })
    ).map((r) => r.key);
  const range = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(3, '0')}`);

  before(async () => {
    db = await openEmbedded({ dataDir });
    await migrate(db);
    await db.serveSocket();
  });
  after(async () => {
    for (const c of clients) await c.end().catch(() => {});
    await db.close();
  });

  it('serves the database on DATA_DIR/.s.PGSQL.5432 to a pg client', async () => {
    assert.equal((await stat(join(dataDir, SOCKET_FILE))).isSocket(), true);
    await db.prisma.rateLimit.create({ data: { key: 'socket-visible', hits: 7, resetAt: new Date() } });
    const c = await socketClient();
    const r = await c.query<{ hits: number }>('SELECT hits FROM rate_limits WHERE key = $1', [
      'socket-visible',
    ]);
    assert.deepEqual(r.rows, [{ hits: 7 }]);
  });

  it('keeps every row, exactly as written, when the server and two socket clients write at the same time', async () => {
    const [a, b] = [await socketClient(), await socketClient()];
    // Each writer uses its own statement shape, so one client's parameters bound to another's statement (wire
    // messages interleaved between Parse and Sync) would show as an error or a wrong `hits`.
    const viaA = async () => {
      for (const key of range('w-a-', 50)) {
        await a.query('INSERT INTO rate_limits (key, hits, reset_at) VALUES ($1, $2, now())', [key, 2]);
      }
    };
    const viaB = async () => {
      for (const key of range('w-b-', 50)) {
        await b.query('INSERT INTO rate_limits (reset_at, key, hits) VALUES (now(), $1, 3)', [key]);
      }
    };
    const viaPrisma = async () => {
      for (const key of range('w-owner-', 50)) {
        await db.prisma.rateLimit.create({ data: { key, hits: 1, resetAt: new Date() } });
      }
    };
    await within(Promise.all([viaPrisma(), viaA(), viaB()]), 60_000, 'writes');
    const rows = await db.prisma.rateLimit.findMany({
      where: { key: { startsWith: 'w-' } },
      orderBy: { key: 'asc' },
    });
    assert.deepEqual(
      rows.map((r) => [r.key, r.hits]),
      [
        ...range('w-a-', 50).map((k) => [k, 2]),
        ...range('w-b-', 50).map((k) => [k, 3]),
        ...range('w-owner-', 50).map((k) => [k, 1]),
      ],
    );
    const count = await a.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM rate_limits WHERE key LIKE 'w-%'",
    );
    assert.equal(count.rows[0]!.n, 150);
  });

  it('keeps every row when the server and two socket clients write in transactions at the same time', async () => {
    const [a, b] = [await socketClient(), await socketClient()];
    const viaSocket = async (c: pg.Client, prefix: string) => {
      const all = range(prefix, 40);
      for (let i = 0; i < all.length; i += 2) {
        await c.query('BEGIN');
        await c.query('INSERT INTO rate_limits (key, hits, reset_at) VALUES ($1, 1, now())', [all[i]]);
        await c.query('INSERT INTO rate_limits (key, hits, reset_at) VALUES ($1, 1, now())', [all[i + 1]]);
        await c.query('COMMIT');
      }
    };
    const viaPrisma = async (prefix: string) => {
      const all = range(prefix, 40);
      for (let i = 0; i < all.length; i += 2) {
        await db.prisma.$transaction(async (tx) => {
          await tx.rateLimit.create({ data: { key: all[i]!, hits: 1, resetAt: new Date() } });
          await tx.rateLimit.create({ data: { key: all[i + 1]!, hits: 1, resetAt: new Date() } });
        });
      }
    };
    await within(
      Promise.all([viaPrisma('t-owner-'), viaSocket(a, 't-a-'), viaSocket(b, 't-b-')]),
      60_000,
      'writes',
    );
    assert.deepEqual(await keys('t-'), [
      ...range('t-a-', 40),
      ...range('t-b-', 40),
      ...range('t-owner-', 40),
    ]);
  });

  it('keeps a server write made while a socket client’s transaction is open when that client rolls back', async () => {
    const c = await socketClient();
    await c.query('BEGIN');
    await c.query("INSERT INTO rate_limits (key, hits, reset_at) VALUES ('rb-client', 1, now())");
    const serverWrite = db.prisma.rateLimit.create({
      data: { key: 'rb-server', hits: 1, resetAt: new Date() },
    });
    // Unguarded, the write runs inside the client's transaction at once; guarded, it waits for the client.
    await settledOrAfter(serverWrite, 1000);
    await c.query('ROLLBACK');
    await within(serverWrite, 10_000, 'the server write');
    assert.deepEqual(await keys('rb-'), ['rb-server']);
  });

  it('keeps a socket client write made while a server transaction is open when that transaction rolls back', async () => {
    const c = await socketClient();
    let clientWrite: Promise<unknown> | undefined;
    await assert.rejects(
      db.prisma.$transaction(async (tx) => {
        await tx.rateLimit.create({ data: { key: 'srb-server', hits: 1, resetAt: new Date() } });
        clientWrite = c.query(
          "INSERT INTO rate_limits (key, hits, reset_at) VALUES ('srb-client', 1, now())",
        );
        await settledOrAfter(clientWrite, 1000);
        throw new Error('abandon the server transaction');
      }),
      /abandon the server transaction/,
    );
    await within(clientWrite!, 10_000, 'the client write');
    assert.deepEqual(await keys('srb-'), ['srb-client']);
  });

  it('answers a socket client that queries while the server is inside a transaction', async () => {
    const [a, b] = [await socketClient(), await socketClient()];
    await a.query('SELECT 1');
    let answer: Promise<pg.QueryResult> | undefined;
    await db.prisma.$transaction(async (tx) => {
      await tx.rateLimit.create({ data: { key: 'stall-server', hits: 1, resetAt: new Date() } });
      answer = b.query('SELECT count(*)::int AS n FROM rate_limits WHERE key = $1', ['stall-server']);
      await sleep(100);
    });
    // It waits for the server's transaction, then sees its committed row (never a half-done one).
    assert.deepEqual((await within(answer!, 10_000, "the client's query")).rows, [{ n: 1 }]);
  });

  it('rolls back and frees the database when a socket client disconnects inside a transaction', async () => {
    const c = new pg.Client({ host: dataDir, port: SOCKET_PORT, user: 'postgres', database: 'postgres' });
    await c.connect();
    await c.query('BEGIN');
    await c.query("INSERT INTO rate_limits (key, hits, reset_at) VALUES ('dc-client', 1, now())");
    await c.end();
    await within(
      db.prisma.rateLimit.create({ data: { key: 'dc-server', hits: 1, resetAt: new Date() } }),
      10_000,
      'the server write after the disconnect',
    );
    assert.deepEqual(await keys('dc-'), ['dc-server']);
  });
  it('delivers a NOTIFY sent through the socket to the server’s own listeners', async () => {
    const heard: string[] = [];
    let bothHeard: () => void = () => {};
    const both = new Promise<void>((resolve) => {
      bothHeard = resolve;
    });
    const unlisten = await db.listen(
      'latchkey_socket_test',
      (p) => {
        if (heard.push(p) === 2) bothHeard();
      },
      () => {},
    );
    try {
      const c = await socketClient();
      await c.query("NOTIFY latchkey_socket_test, 'plain'");
      await c.query('BEGIN');
      await c.query("SELECT pg_notify('latchkey_socket_test', 'after commit')");
      await c.query('COMMIT');
      await within(both, 5000, 'the two notifications').catch(() => {});
      assert.deepEqual(heard, ['plain', 'after commit']);
    } finally {
      await unlisten();
    }
  });

  it('stops serving the socket and releases the lock when closed', async () => {
    const c = await socketClient();
    await c.query('SELECT 1');
    await db.close();
    assert.equal(await exists(join(dataDir, SOCKET_FILE)), false, 'the socket file is removed');
    assert.equal(await exists(join(dataDir, LOCK_FILE)), false, 'the lock file is removed');
    await assert.rejects(c.query('SELECT 1'));
    await assert.rejects(socketClient());
  });
});

describe('second server process', () => {
  let holder: ServerProcess | undefined;
  after(async () => {
    await holder?.stop();
  });

  it('exits non-zero at once, naming the directory in use, while another server holds DATA_DIR', async () => {
    holder = spawnServer({ env: { DATA_DIR: dataDir } });
    await waitUntilReady(holder);

    // At once: without the lock it would open the directory and serve, never exiting by itself.
    const second = spawnServer({ env: { DATA_DIR: dataDir } });
    const exit = await within(second.exited, 15_000, 'the second server');
    assert.notEqual(exit.code, 0);
    assert.equal(exit.signal, null);
    const said = [...second.logs().map((l) => String(l.msg)), second.output()].join('\n');
    assert.ok(said.includes(`${dataDir} is in use by process ${holder.child.pid}`), said);

    // The holder is unaffected and still shuts down cleanly.
    await waitUntilReady(holder);
    assert.deepEqual(await holder.stop(), { code: 0, signal: null });
  });
});
