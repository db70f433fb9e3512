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
});
