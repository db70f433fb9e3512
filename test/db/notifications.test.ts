// Every LISTEN of one Postgres handle shares one connection (src/db/notifications.ts): one backend per instance for
// the change and acknowledgement channels, not one per channel. A lost connection is heard by every subscriber of
// every channel, and a new one listens to all of them again; a channel left by its last subscriber is unlistened,
// and the connection ends with the last channel. Each case waits on the events it expects, never on a clock.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { openPostgres } from '../../src/db/database.ts';
import { LISTENER_APPLICATION_NAME } from '../../src/db/notifications.ts';
import { createPostgresDatabase, DB_KINDS } from '../helpers/db.ts';
import { TcpProxy } from '../helpers/net.ts';

/** A subscriber that records what it hears, and whose next message or state can be awaited. */
class Ear {
  readonly messages: string[] = [];
  readonly states: boolean[] = [];
  private waiters: { test: () => boolean; resolve: () => void }[] = [];

  readonly onMessage = (payload: string) => {
    this.messages.push(payload);
    this.wake();
  };
  readonly onState = (listening: boolean) => {
    this.states.push(listening);
    this.wake();
  };

  /** Resolves once `test` holds (checked on every message and state change); fails the test after 20 s. */
  until(test: () => boolean, what: string): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`never heard: ${what}`)), 20_000);
      this.waiters.push({
        test,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  heard(payload: string): Promise<void> {
    return this.until(() => this.messages.includes(payload), payload);
  }

  get listening(): boolean {
    return this.states.at(-1) === true;
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.test()) return true;
      w.resolve();
      return false;
    });
  }
}

describe('notification channels share one connection [postgres]', {
  skip: !DB_KINDS.includes('postgres'),
}, () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let admin: pg.Client;

  before(async () => {
    database = await createPostgresDatabase();
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
  });
  after(async () => {
    await admin.end();
    await database.drop();
  });

  async function listeners(): Promise<number[]> {
    const r = await admin.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
      [LISTENER_APPLICATION_NAME],
    );
    return r.rows.map((row) => row.pid);
  }

  /** The listener backends, once the ended ones have left pg_stat_activity (a backend exits after its socket). */
  async function listenersSettled(expected: number): Promise<number[]> {
    for (let i = 0; i < 200; i++) {
      const pids = await listeners();
      if (pids.length === expected) return pids;
      await admin.query('SELECT pg_sleep(0.05)');
    }
    return listeners();
  }

  it('carries every channel on one backend and hands each notification to its own channel', async () => {
    const db = openPostgres({ url: database.url, poolSize: 2 });
    const [a1, a2, b] = [new Ear(), new Ear(), new Ear()];
    try {
      await db.listen('lk_test_a', a1.onMessage, a1.onState);
      await db.listen('lk_test_a', a2.onMessage, a2.onState);
      await db.listen('lk_test_b', b.onMessage, b.onState);
      assert.deepEqual([a1.states, a2.states, b.states], [[true], [true], [true]]);
      assert.equal((await listeners()).length, 1, 'one listener backend for both channels');
      await admin.query("NOTIFY lk_test_a, 'to a'");
      await admin.query("NOTIFY lk_test_b, 'to b'");
      await Promise.all([a1.heard('to a'), a2.heard('to a'), b.heard('to b')]);
      assert.deepEqual([a1.messages, a2.messages, b.messages], [['to a'], ['to a'], ['to b']]);
    } finally {
      await db.close();
    }
  });

  it('tells every subscriber of every channel when the connection is lost, then listens to all of them again', async () => {
    const db = openPostgres({ url: database.url, poolSize: 2 });
    const [a, b] = [new Ear(), new Ear()];
    try {
      await db.listen('lk_test_a', a.onMessage, a.onState);
      await db.listen('lk_test_b', b.onMessage, b.onState);
      const [before] = await listeners();
      // With a timeout, pg_terminate_backend returns once the backend has exited (PostgreSQL 14+).
      assert.equal(
        (await admin.query('SELECT pg_terminate_backend($1, 20000) AS gone', [before])).rows[0].gone,
        true,
      );
      await Promise.all(
        [a, b].map((ear) =>
          ear.until(() => ear.states.join() === 'true,false,true', 'lost, then listening again'),
        ),
      );
      const now = await listeners();
      assert.equal(now.length, 1);
      assert.notEqual(now[0], before);
      await admin.query("NOTIFY lk_test_a, 'again a'");
      await admin.query("NOTIFY lk_test_b, 'again b'");
      await Promise.all([a.heard('again a'), b.heard('again b')]);
    } finally {
      await db.close();
    }
  });

  it('unlistens a channel its last subscriber left, and ends the connection with the last channel', async () => {
    const db = openPostgres({ url: database.url, poolSize: 2 });
    const [a, b] = [new Ear(), new Ear()];
    try {
      const leaveA = await db.listen('lk_test_a', a.onMessage, a.onState);
      const leaveB = await db.listen('lk_test_b', b.onMessage, b.onState);
      await leaveA();
      // Notifications from one session arrive in the order sent: once b hears its own, a's would have come first.
      await admin.query("NOTIFY lk_test_a, 'after leaving'");
      await admin.query("NOTIFY lk_test_b, 'still here'");
      await b.heard('still here');
      assert.deepEqual(a.messages, []);
      assert.equal((await listeners()).length, 1);
      await leaveB();
      assert.deepEqual(await listenersSettled(0), [], 'no listener backend once nobody listens');
      // A new subscription opens a new connection.
      const c = new Ear();
      await db.listen('lk_test_b', c.onMessage, c.onState);
      assert.deepEqual(c.states, [true]);
      await admin.query("NOTIFY lk_test_b, 'new'");
      await c.heard('new');
    } finally {
      await db.close();
    }
    assert.deepEqual(await listenersSettled(0), [], 'closing the handle ends its listener connection');
  });

  it('keeps trying while the database is unreachable, and a subscription made meanwhile listens once it is back', async () => {
    const proxy = new TcpProxy('127.0.0.1', 5432);
    await proxy.open();
    const through = new URL(database.url);
    through.port = String(proxy.port);
    const db = openPostgres({ url: through.href, poolSize: 2 });
    const [a, b] = [new Ear(), new Ear()];
    try {
      await db.listen('lk_test_a', a.onMessage, a.onState);
      await proxy.cut();
      await a.until(() => !a.listening, 'the connection lost');
      // Refused while cut: the next attempt reaches the proxy and is dropped, and b subscribes meanwhile.
      assert.equal(await proxy.nextConnection(), 'dropped');
      await db.listen('lk_test_b', b.onMessage, b.onState);
      assert.equal(b.listening, false);
      await proxy.open();
      await Promise.all([
        a.until(() => a.listening, 'a listening again'),
        b.until(() => b.listening, 'b listening'),
      ]);
      await admin.query("NOTIFY lk_test_a, 'back a'");
      await admin.query("NOTIFY lk_test_b, 'back b'");
      await Promise.all([a.heard('back a'), b.heard('back b')]);
    } finally {
      await db.close();
      await proxy.close();
    }
  });
});
