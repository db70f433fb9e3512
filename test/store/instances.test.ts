// Running instances (src/store/instances.ts, src/changes.ts): rows written at start and on every heartbeat, removed
// on a clean stop; a revocation waits for every live instance's acknowledgement and skips lapsed ones; an instance
// whose heartbeat is stale (paused, or the database refused it) serves nothing from its caches until a heartbeat
// works again. Time and timers are the test's own (ManualClock, ManualTimers).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, it } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { ChangeFeed, type InstanceOptions } from '../../src/changes.ts';
import { ManualClock } from '../../src/lib/clock.ts';
import { ChangeCache } from '../../src/oauth/change-cache.ts';
import { instanceStore } from '../../src/store/instances.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';
import { captureLogs } from '../helpers/log-capture.ts';
import { ManualTimers } from '../helpers/timers.ts';

const OPTIONS = { heartbeatMs: 1000, lapseMs: 3000, ackTimeoutMs: 2000 } as const;

forEachDatabase('instances', (kind) => {
  let t: TestDatabase;
  const feeds: ChangeFeed[] = [];
  before(async () => {
    t = await migratedDatabase(kind);
  });
  after(async () => {
    for (const f of feeds) await f.stop();
    await t.cleanup();
  });

  async function startFeed(clock: ManualClock, options: InstanceOptions = {}, db = t.db) {
    const logs = captureLogs('warn');
    const timers = new ManualTimers();
    const feed = await ChangeFeed.start(db, logs.logger as unknown as FastifyBaseLogger, clock, {
      ...OPTIONS,
      timers,
      ...options,
    });
    feeds.push(feed);
    return { feed, timers, logs };
  }

  it('the store writes a row, refreshes its heartbeat, lists live ones and removes lapsed ones', async () => {
    const store = instanceStore(t.db.prisma);
    const id = randomUUID();
    const row = { id, host: 'h', pid: 1, startedAt: new Date(1_000_000) };
    await store.beat(row, new Date(1_000_000));
    await store.beat(row, new Date(1_005_000));
    const mine = (await store.list()).find((r) => r.id === id);
    assert.equal(mine?.heartbeatAt.getTime(), 1_005_000);
    assert.equal(mine?.startedAt.getTime(), 1_000_000);
    assert.ok((await store.live(new Date(1_004_999))).includes(id));
    assert.ok(!(await store.live(new Date(1_005_000))).includes(id));
    assert.equal(await store.removeLapsed(new Date(1_005_001)), 1);
    assert.deepEqual(await store.list(), []);
  });

  it('an instance registers at start, with its host and pid, and removes its row on a clean stop', async () => {
    const { feed } = await startFeed(new ManualClock());
    const rows = await instanceStore(t.db.prisma).list();
    assert.deepEqual(
      rows.map((r) => [r.id, r.pid]),
      [[feed.instanceId, process.pid]],
    );
    assert.ok(feed.listening && feed.fresh());
    await feed.stop();
    assert.deepEqual(await instanceStore(t.db.prisma).list(), []);
  });

  it('a clean stop while a heartbeat is under way leaves no row behind', async () => {
    const { feed } = await startFeed(new ManualClock());
    const beat = feed.heartbeat();
    await feed.stop();
    await beat;
    assert.deepEqual(await instanceStore(t.db.prisma).list(), []);
  });

  it('flush waits for another live instance to clear its caches and acknowledge', async () => {
    const clock = new ManualClock();
    const a = await startFeed(clock);
    const b = await startFeed(clock);
    const cleared: boolean[] = [];
    b.feed.subscribe((listening) => cleared.push(listening));
    const confirmation = await a.feed.flushConfirmed();
    assert.deepEqual(confirmation, { waitedFor: [b.feed.instanceId], missing: [] });
    // B cleared (the change marker) before it answered.
    assert.ok(cleared.length >= 1 && cleared.every(Boolean));
    await b.feed.stop();
    assert.deepEqual(await a.feed.flushConfirmed(), { waitedFor: [], missing: [] });
    await a.feed.stop();
  });

  it('a live instance that never answers holds a flush only until the bound, and is named in a warning', async () => {
    const clock = new ManualClock();
    const a = await startFeed(clock);
    const silent = randomUUID();
    await instanceStore(t.db.prisma).beat(
      { id: silent, host: 'gone', pid: 2, startedAt: clock.now() },
      clock.now(),
    );
    const flushed = a.feed.flushConfirmed();
    await a.timers.armed(2); // the heartbeat's timer and the wait's
    assert.ok(a.timers.delays.includes(OPTIONS.ackTimeoutMs));
    a.timers.fireAll();
    assert.deepEqual(await flushed, { waitedFor: [silent], missing: [silent] });
    const warning = a.logs.atLeast(40).find((l) => String(l.msg).includes('did not acknowledge'));
    assert.deepEqual(warning?.instances, [silent]);
    await instanceStore(t.db.prisma).remove(silent);
    await a.feed.stop();
  });

  it('an instance whose heartbeat lapsed is skipped: the flush answers without waiting for it', async () => {
    const clock = new ManualClock();
    const a = await startFeed(clock);
    const lapsed = randomUUID();
    const old = new Date(clock.now().getTime() - OPTIONS.lapseMs - 1);
    await instanceStore(t.db.prisma).beat({ id: lapsed, host: 'paused', pid: 3, startedAt: old }, old);
    assert.deepEqual(await a.feed.flushConfirmed(), { waitedFor: [], missing: [] });
    await instanceStore(t.db.prisma).remove(lapsed);
    await a.feed.stop();
  });

  it('a stale heartbeat turns the cache off at once, and only a fresh heartbeat turns it back on, empty', async () => {
    const clock = new ManualClock();
    const { feed } = await startFeed(clock);
    const cache = new ChangeCache<string>(feed, clock, { maxEntries: 100, ttlSeconds: 3600 });
    cache.set('k', 'active', cache.generation);
    assert.equal(cache.get('k'), 'active');
    // Paused past the trust window (lapse minus one heartbeat): no timer has run, yet nothing is served.
    clock.advance(2);
    assert.equal(feed.fresh(), false);
    assert.equal(cache.get('k'), undefined);
    assert.equal(await feed.heartbeat(), true);
    assert.equal(feed.fresh(), true);
    assert.equal(cache.get('k'), undefined, 'what was cached before the lapse is gone');
    await feed.stop();
  });

  it('a heartbeat the database refuses turns the caches off once it lapses; they come back with the next one', async () => {
    const own = await migratedDatabase(kind);
    try {
      const clock = new ManualClock();
      const { feed, logs } = await startFeed(clock, {}, own.db);
      const states: boolean[] = [];
      feed.subscribe((listening) => states.push(listening));
      await own.db.withConnection((c) => c.exec('ALTER TABLE instances RENAME TO instances_away'));
      clock.advance(1);
      assert.equal(await feed.heartbeat(), false);
      assert.ok(feed.listening, 'one missed heartbeat is within the trust window');
      clock.advance(1);
      assert.equal(await feed.heartbeat(), false);
      assert.equal(feed.listening, false);
      assert.deepEqual(states, [false]);
      assert.ok(logs.atLeast(40).some((l) => String(l.msg).includes('heartbeat lapsed')));
      await own.db.withConnection((c) => c.exec('ALTER TABLE instances_away RENAME TO instances'));
      assert.equal(await feed.heartbeat(), true);
      assert.deepEqual(states, [false, true]);
      assert.ok(feed.fresh());
      await feed.stop();
    } finally {
      await own.cleanup();
    }
  });
});
