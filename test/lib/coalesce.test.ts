// Group commit (src/lib/coalesce.ts): calls of one turn of the event loop run as one batch; a failed batch runs its
// members alone, unless the failure leaves unknown whether the batch committed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { coalesce } from '../../src/lib/coalesce.ts';

describe('coalesce', () => {
  it('runs the calls of one turn as one batch, each getting the output at its own index', async () => {
    const batches: number[][] = [];
    const double = coalesce(async (xs: number[]) => {
      batches.push(xs);
      return xs.map((x) => x * 2);
    });
    assert.deepEqual(await Promise.all([double(1), double(2), double(3)]), [2, 4, 6]);
    assert.deepEqual(await double(4), 8);
    assert.deepEqual(batches, [[1, 2, 3], [4]]);
  });

  it('runs each member of a failed batch alone, so only the one that fails fails', async () => {
    const batches: number[][] = [];
    const run = coalesce(async (xs: number[]) => {
      batches.push(xs);
      if (xs.includes(2)) throw new Error('two refused');
      return xs;
    });
    const settled = await Promise.allSettled([run(1), run(2), run(3)]);
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(batches, [[1, 2, 3], [1], [2], [3]]);
  });

  it('fails every member of a batch with its error, running nothing again, when retryAlone says no', async () => {
    const batches: number[][] = [];
    const lost = new Error('connection terminated unexpectedly');
    const run = coalesce(
      async (xs: number[]) => {
        batches.push(xs);
        throw lost;
      },
      { retryAlone: (err) => err !== lost },
    );
    const settled = await Promise.allSettled([run(1), run(2)]);
    for (const s of settled) assert.equal((s as PromiseRejectedResult).reason, lost);
    assert.deepEqual(batches, [[1, 2]], 'a batch that may have committed is not run again');
  });

  it('holds calls made while maxInFlight batches are under way, and sends them together when one returns', async () => {
    const batches: number[][] = [];
    const releases: (() => void)[] = [];
    const started: (() => void)[] = [];
    const nextStart = () => new Promise<void>((resolve) => started.push(resolve));
    const run = coalesce(
      (xs: number[]) => {
        batches.push(xs);
        started.shift()?.();
        return new Promise<number[]>((resolve) => releases.push(() => resolve(xs)));
      },
      { maxInFlight: 1 },
    );
    const firstStarted = nextStart();
    const first = run(1);
    await firstStarted;
    const later = [run(2), run(3)];
    await new Promise(setImmediate);
    const last = run(4);
    await new Promise(setImmediate);
    await new Promise(setImmediate);
    assert.deepEqual(batches, [[1]], 'nothing else is sent while the one allowed batch is under way');
    const secondStarted = nextStart();
    releases.shift()!();
    assert.equal(await first, 1);
    await secondStarted;
    assert.deepEqual(batches, [[1], [2, 3, 4]], 'the calls that waited go out as one batch');
    releases.shift()!();
    assert.deepEqual(await Promise.all([...later, last]), [2, 3, 4]);
  });

  it('sends at most maxBatch calls in one batch', async () => {
    const batches: number[][] = [];
    const run = coalesce(
      async (xs: number[]) => {
        batches.push(xs);
        return xs;
      },
      { maxBatch: 2 },
    );
    assert.deepEqual(await Promise.all([1, 2, 3, 4, 5].map(run)), [1, 2, 3, 4, 5]);
    assert.deepEqual(batches, [[1, 2], [3, 4], [5]]);
  });

  it('fails only the failing call of a held batch, and goes on sending what waits after it', async () => {
    const batches: number[][] = [];
    let releaseFirst = () => {};
    const run = coalesce(
      (xs: number[]) => {
        batches.push(xs);
        if (batches.length === 1)
          return new Promise<number[]>((resolve) => (releaseFirst = () => resolve(xs)));
        if (xs.includes(3)) return Promise.reject(new Error('three refused'));
        return Promise.resolve(xs);
      },
      { maxInFlight: 1 },
    );
    const first = run(1);
    await new Promise(setImmediate);
    const held = [run(2), run(3), run(4)];
    releaseFirst();
    assert.equal(await first, 1);
    const settled = await Promise.allSettled(held);
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.deepEqual(batches, [[1], [2, 3, 4], [2], [3], [4]]);
    assert.equal(await run(5), 5, 'the slot is free again after a failed batch');
  });
});
