// The one bounded, expiring cache behind /introspect's answer cache and the resource-server kit's token cache.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BoundedCache } from '../../src/lib/bounded-cache.ts';

type Step =
  | { set: string; value?: number; ttl?: number }
  | { get: string; expect: number | undefined }
  | { advance: number }
  | { delete: string };

interface Case {
  name: string;
  maxEntries: number;
  steps: Step[];
  /** Keys held at the end, oldest first. */
  keys: string[];
}

const cases: Case[] = [
  {
    name: 'returns what was set until it expires',
    maxEntries: 10,
    steps: [
      { set: 'a', value: 1, ttl: 100 },
      { get: 'a', expect: 1 },
      { advance: 99 },
      { get: 'a', expect: 1 },
    ],
    keys: ['a'],
  },
  {
    name: 'drops an entry at its expiry, not after',
    maxEntries: 10,
    steps: [{ set: 'a', value: 1, ttl: 100 }, { advance: 100 }, { get: 'a', expect: undefined }],
    keys: [],
  },
  {
    name: 'gives each entry its own expiry',
    maxEntries: 10,
    steps: [
      { set: 'a', value: 1, ttl: 50 },
      { set: 'b', value: 2, ttl: 500 },
      { advance: 60 },
      { get: 'a', expect: undefined },
      { get: 'b', expect: 2 },
    ],
    keys: ['b'],
  },
  {
    name: 'evicts the oldest entry when full',
    maxEntries: 2,
    steps: [{ set: 'a' }, { set: 'b' }, { set: 'c' }, { get: 'a', expect: undefined }],
    keys: ['b', 'c'],
  },
  {
    name: 'evicts the least recently used entry, not the least recently set',
    maxEntries: 2,
    steps: [{ set: 'a', value: 1 }, { set: 'b' }, { get: 'a', expect: 1 }, { set: 'c' }],
    keys: ['a', 'c'],
  },
  {
    name: 'keeps entries in place when they are read (a read only marks them)',
    maxEntries: 3,
    steps: [{ set: 'a', value: 1 }, { set: 'b' }, { get: 'a', expect: 1 }],
    keys: ['a', 'b'],
  },
  {
    name: 'passes over a read entry once: read again, it survives another eviction; unread, it goes next',
    maxEntries: 2,
    steps: [
      { set: 'a', value: 1 },
      { set: 'b' },
      { get: 'a', expect: 1 },
      { set: 'c' },
      { get: 'a', expect: 1 },
      { set: 'd' },
      { set: 'e' },
    ],
    keys: ['d', 'e'],
  },
  {
    name: 'replaces an entry in place without evicting another',
    maxEntries: 2,
    steps: [
      { set: 'a' },
      { set: 'b' },
      { set: 'a', value: 7 },
      { get: 'b', expect: 0 },
      { get: 'a', expect: 7 },
    ],
    keys: ['b', 'a'],
  },
  {
    name: 'stores nothing already expired, and forgets what it replaced',
    maxEntries: 10,
    steps: [
      { set: 'a', value: 1 },
      { set: 'a', value: 2, ttl: 0 },
      { get: 'a', expect: undefined },
    ],
    keys: [],
  },
  {
    name: 'stores nothing with a bound of zero',
    maxEntries: 0,
    steps: [{ set: 'a' }, { get: 'a', expect: undefined }],
    keys: [],
  },
  {
    name: 'deletes one entry',
    maxEntries: 10,
    steps: [{ set: 'a' }, { set: 'b' }, { delete: 'a' }, { get: 'a', expect: undefined }],
    keys: ['b'],
  },
];

describe('BoundedCache', () => {
  for (const c of cases) {
    it(c.name, () => {
      let now = 1_000_000;
      const cache = new BoundedCache<string, number>({ maxEntries: c.maxEntries, now: () => now });
      for (const step of c.steps) {
        if ('set' in step) cache.set(step.set, step.value ?? 0, now + (step.ttl ?? 1000));
        else if ('get' in step) assert.equal(cache.get(step.get), step.expect, `get ${step.get}`);
        else if ('advance' in step) now += step.advance;
        else cache.delete(step.delete);
      }
      assert.deepEqual(cache.keys(), c.keys);
      assert.equal(cache.size, c.keys.length);
    });
  }

  it('clears every entry', () => {
    const cache = new BoundedCache<string, number>({ maxEntries: 10, now: () => 0 });
    cache.set('a', 1, 10);
    cache.set('b', 2, 10);
    cache.clear();
    assert.equal(cache.size, 0);
    assert.equal(cache.get('a'), undefined);
  });

  it('evicts as a walk from the oldest entry would, over a long run of mixed operations (eviction keeps its place)', () => {
    // The model: an array, oldest first, evicted from the front every time (what the cache must match).
    interface ModelEntry {
      key: string;
      value: number;
      expiresAt: number;
      used: boolean;
    }
    const maxEntries = 64;
    let now = 1_000_000;
    let model: ModelEntry[] = [];
    const cache = new BoundedCache<string, number>({ maxEntries, now: () => now });
    const remove = (key: string) => {
      model = model.filter((e) => e.key !== key);
    };
    // A fixed pseudo-random sequence (mulberry32), so a failure repeats.
    let seed = 12345;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    let evictions = 0;
    for (let step = 0; step < 40_000; step++) {
      const key = `k${Math.floor(random() * 200)}`;
      const r = random();
      if (r < 0.5) {
        const value = step;
        const expiresAt = now + 1 + Math.floor(random() * 5000);
        cache.set(key, value, expiresAt);
        remove(key);
        while (model.length >= maxEntries) {
          evictions++;
          const oldest = model.shift() as ModelEntry;
          if (!oldest.used) break;
          oldest.used = false;
          model.push(oldest);
        }
        model.push({ key, value, expiresAt, used: false });
      } else if (r < 0.9) {
        const entry = model.find((e) => e.key === key);
        let expected: number | undefined;
        if (entry && entry.expiresAt <= now) remove(key);
        else if (entry) {
          entry.used = true;
          expected = entry.value;
        }
        assert.equal(cache.get(key), expected, `step ${step}: get ${key}`);
      } else if (r < 0.97) {
        now += Math.floor(random() * 200);
      } else if (r < 0.999) {
        cache.delete(key);
        remove(key);
      } else {
        cache.clear();
        model = [];
      }
      if (step % 500 === 0)
        assert.deepEqual(
          cache.keys(),
          model.map((e) => e.key),
          `step ${step}`,
        );
    }
    assert.deepEqual(
      cache.keys(),
      model.map((e) => e.key),
    );
    assert.ok(evictions > 5_000, `the run evicted ${evictions} times`);
  });
});
