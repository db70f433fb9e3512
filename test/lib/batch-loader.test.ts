// lib/batch-loader.ts: concurrent lookups coalesced into loads of many keys, bounded in size and in loads under way;
// a failed load fails only its own callers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchLoader } from '../../src/lib/batch-loader.ts';

/** A loader whose loads the test answers itself: each call is recorded with a way to settle it. */
function manualLoader() {
  const calls: { keys: string[]; answer(found: Map<string, string>): void; fail(err: Error): void }[] = [];
  let arrived: (() => void) | undefined;
  const load = (keys: string[]) =>
    new Promise<Map<string, string>>((resolve, reject) => {
      calls.push({ keys, answer: resolve, fail: reject });
      arrived?.();
    });
  /** Resolves once `n` loads have been asked for. */
  const loads = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (calls.length >= n) resolve();
        else arrived = check;
      };
      check();
    });
  return { calls, load, loads };
}

const upper = (keys: string[]) =>
  new Map(keys.filter((k) => k !== 'missing').map((k) => [k, k.toUpperCase()]));

describe('BatchLoader', () => {
  it('loads the keys asked for in one turn with one load; a key asked twice is loaded once; a missing key is undefined', async () => {
    const m = manualLoader();
    const loader = new BatchLoader(m.load, { maxBatch: 10, maxInFlight: 4 });
    const answers = Promise.all(['a', 'b', 'a', 'missing'].map((k) => loader.load(k)));
    await m.loads(1);
    assert.deepEqual(m.calls[0]!.keys, ['a', 'b', 'missing']);
    m.calls[0]!.answer(upper(m.calls[0]!.keys));
    assert.deepEqual(await answers, ['A', 'B', 'A', undefined]);
    assert.equal(m.calls.length, 1);
  });

  it('sends a full batch at once and the rest in the next one, oldest keys first', async () => {
    const m = manualLoader();
    const loader = new BatchLoader(m.load, { maxBatch: 2, maxInFlight: 4 });
    const answers = Promise.all(['a', 'b', 'c'].map((k) => loader.load(k)));
    await m.loads(2);
    assert.deepEqual(
      m.calls.map((c) => c.keys),
      [['a', 'b'], ['c']],
    );
    for (const c of m.calls) c.answer(upper(c.keys));
    assert.deepEqual(await answers, ['A', 'B', 'C']);
  });

  it('holds keys while maxInFlight loads are under way, and sends them together when one returns', async () => {
    const m = manualLoader();
    const loader = new BatchLoader(m.load, { maxBatch: 10, maxInFlight: 1 });
    const first = loader.load('a');
    await m.loads(1);
    const later = Promise.all(['b', 'c', 'a'].map((k) => loader.load(k)));
    // 'a' asked again while its load is under way gets a load of its own: an answer read before it asked is never given.
    m.calls[0]!.answer(upper(['a']));
    assert.equal(await first, 'A');
    await m.loads(2);
    assert.deepEqual(m.calls[1]!.keys, ['b', 'c', 'a']);
    m.calls[1]!.answer(upper(m.calls[1]!.keys));
    assert.deepEqual(await later, ['B', 'C', 'A']);
  });

  it('fails every caller of a failed load with its error, and the next batch loads afresh', async () => {
    const m = manualLoader();
    const loader = new BatchLoader(m.load, { maxBatch: 10, maxInFlight: 4 });
    const failed = ['a', 'b', 'a'].map((k) => loader.load(k));
    await m.loads(1);
    const err = new Error('Connection terminated unexpectedly');
    m.calls[0]!.fail(err);
    for (const p of failed) await assert.rejects(p, (e) => e === err);
    const next = loader.load('a');
    await m.loads(2);
    m.calls[1]!.answer(upper(['a']));
    assert.equal(await next, 'A');
  });

  it('fails the batch of a loader that throws instead of rejecting', async () => {
    let calls = 0;
    const loader = new BatchLoader<string, string>(
      (keys) => {
        calls++;
        if (calls === 1) throw new TypeError('broken');
        return Promise.resolve(upper(keys));
      },
      { maxBatch: 10, maxInFlight: 4 },
    );
    await assert.rejects(loader.load('a'), TypeError);
    assert.equal(await loader.load('a'), 'A');
  });
});
