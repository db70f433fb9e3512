// The rule every in-memory cache follows (src/oauth/change-cache.ts): cleared by any change notification, nothing
// served or stored while notifications are down, and a read overtaken by a notification never stored.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ManualClock } from '../../src/lib/clock.ts';
import { ChangeCache, type ChangeSource } from '../../src/oauth/change-cache.ts';

function feed() {
  const subscribers: ((listening: boolean) => void)[] = [];
  const source: { listening: boolean; notify(): void } & ChangeSource = {
    listening: true,
    fresh: () => source.listening,
    subscribe: (fn) => void subscribers.push(fn),
    notify() {
      for (const fn of subscribers) fn(source.listening);
    },
  };
  return source;
}

it('serves until a change notification, then reads again', async () => {
  const changes = feed();
  const cache = new ChangeCache<string>(changes, new ManualClock(), { maxEntries: 10, ttlSeconds: 60 });
  let reads = 0;
  const load = async () => `row ${++reads}`;
  assert.equal(await cache.lookup('a', load), 'row 1');
  assert.equal(await cache.lookup('a', load), 'row 1');
  changes.notify();
  assert.equal(await cache.lookup('a', load), 'row 2');
});

it('keeps no read that a notification overtook', async () => {
  const changes = feed();
  const cache = new ChangeCache<string>(changes, new ManualClock(), { maxEntries: 10, ttlSeconds: 60 });
  const value = await cache.lookup('a', async () => {
    changes.notify(); // the row changed while it was being read
    return 'old row';
  });
  assert.equal(value, 'old row');
  assert.equal(cache.get('a'), undefined);
});

it('serves and stores nothing while notifications are down, and drops entries past their time', async () => {
  const changes = feed();
  const clock = new ManualClock();
  const cache = new ChangeCache<string>(changes, clock, { maxEntries: 10, ttlSeconds: 5 });
  cache.set('a', 'row', cache.generation);
  changes.listening = false;
  assert.equal(cache.get('a'), undefined);
  cache.set('b', 'row', cache.generation);
  changes.listening = true;
  assert.equal(cache.get('b'), undefined);
  cache.set('c', 'row', cache.generation, new Date(clock.now().getTime() + 60_000));
  clock.advance(6);
  assert.equal(cache.get('c'), undefined, 'at most ttlSeconds');
  cache.set('d', 'row', cache.generation, new Date(clock.now().getTime() + 1000));
  clock.advance(2);
  assert.equal(cache.get('d'), undefined, 'never past expiresAt');
});

it('serves nothing while the instance is not trusted (heartbeat stale), asked with the reading used for expiry', () => {
  const clock = new ManualClock();
  let trusted = true;
  const seen: number[] = [];
  const changes: ChangeSource = {
    listening: true,
    subscribe: () => {},
    fresh: (now) => {
      seen.push(now ?? Number.NaN);
      return trusted;
    },
  };
  const cache = new ChangeCache<string>(changes, clock, { maxEntries: 10, ttlSeconds: 60 });
  cache.set('k', 'active', cache.generation);
  assert.equal(cache.get('k'), 'active');
  trusted = false;
  assert.equal(cache.get('k'), undefined);
  assert.equal(cache.enabled, false);
  trusted = true;
  assert.equal(cache.get('k'), 'active');
  assert.ok(seen.every((n) => n === clock.now().getTime()));
});

/** A read that answers when told to, so tests can hold it under way. */
function heldReads() {
  const reads: { key: string; answer(value: string | null): void; fail(error: Error): void }[] = [];
  const load = (key: string) =>
    new Promise<string | null>((resolve, reject) => {
      reads.push({ key, answer: resolve, fail: reject });
    });
  return { reads, load };
}

it('shares one read among the misses under way, and keeps its value', async () => {
  const cache = new ChangeCache<string>(feed(), new ManualClock(), { maxEntries: 10, ttlSeconds: 60 });
  const { reads, load } = heldReads();
  const waiting = Array.from({ length: 8 }, () => cache.lookup('a', load));
  assert.equal(reads.length, 1);
  reads[0]?.answer('row');
  assert.deepEqual(await Promise.all(waiting), Array(8).fill('row'));
  assert.equal(await cache.lookup('a', load), 'row');
  assert.equal(reads.length, 1, 'then a hit');
});

it('never lets a request that follows a notification join a read that started before it', async () => {
  const changes = feed();
  const cache = new ChangeCache<string>(changes, new ManualClock(), { maxEntries: 10, ttlSeconds: 60 });
  const { reads, load } = heldReads();
  const before = cache.lookup('a', load);
  changes.notify(); // e.g. the row was deleted, and this instance has applied it
  const after = cache.lookup('a', load);
  assert.equal(reads.length, 2, 'the request after the change reads for itself');
  const alsoAfter = cache.lookup('a', load);
  assert.equal(reads.length, 2, 'and those after it share that read');
  reads[1]?.answer(null);
  reads[0]?.answer('deleted row');
  assert.equal(await before, 'deleted row');
  assert.equal(await after, null);
  assert.equal(await alsoAfter, null);
  assert.equal(cache.get('a'), undefined, 'neither the raced read nor the miss is kept');
  const next = cache.lookup('a', load);
  assert.equal(reads.length, 3, 'the older read settling late does not disturb the map of reads under way');
  reads[2]?.answer('new row');
  assert.equal(await next, 'new row');
});

it('passes a failed read to every request that shared it, and the next request reads again', async () => {
  const cache = new ChangeCache<string>(feed(), new ManualClock(), { maxEntries: 10, ttlSeconds: 60 });
  const { reads, load } = heldReads();
  const waiting = Promise.allSettled([cache.lookup('a', load), cache.lookup('a', load)]);
  reads[0]?.fail(new Error('connection lost'));
  const settled = await waiting;
  assert.ok(settled.every((r) => r.status === 'rejected' && r.reason.message === 'connection lost'));
  const again = cache.lookup('a', load);
  assert.equal(reads.length, 2);
  reads[1]?.answer('row');
  assert.equal(await again, 'row');
});

it('reads for every request while it may not serve, and keeps a value no longer than until() says', async () => {
  const changes = feed();
  const clock = new ManualClock();
  const cache = new ChangeCache<string>(changes, clock, { maxEntries: 10, ttlSeconds: 60 });
  const { reads, load } = heldReads();
  changes.listening = false;
  const down = [cache.lookup('a', load), cache.lookup('a', load)];
  assert.equal(reads.length, 2, 'no sharing while notifications are down');
  for (const r of reads) r.answer('row');
  assert.deepEqual(await Promise.all(down), ['row', 'row']);
  changes.listening = true;
  const until = () => new Date(clock.now().getTime() + 1000);
  const kept = cache.lookup('b', load, until);
  reads[2]?.answer('short-lived');
  assert.equal(await kept, 'short-lived');
  assert.equal(cache.get('b'), 'short-lived');
  clock.advance(2);
  assert.equal(cache.get('b'), undefined, 'gone after until()');
});
