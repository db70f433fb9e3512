// The rule every in-memory cache follows (src/oauth/change-cache.ts): cleared by any change notification, nothing
// served or stored while notifications are down, and a read overtaken by a notification never stored.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ManualClock } from '../../src/lib/clock.ts';
import { ChangeCache, type ChangeSource, cachedLookup } from '../../src/oauth/change-cache.ts';

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
  assert.equal(await cachedLookup(cache, 'a', load), 'row 1');
  assert.equal(await cachedLookup(cache, 'a', load), 'row 1');
  changes.notify();
  assert.equal(await cachedLookup(cache, 'a', load), 'row 2');
});

it('keeps no read that a notification overtook', async () => {
  const changes = feed();
  const cache = new ChangeCache<string>(changes, new ManualClock(), { maxEntries: 10, ttlSeconds: 60 });
  const value = await cachedLookup(cache, 'a', async () => {
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
