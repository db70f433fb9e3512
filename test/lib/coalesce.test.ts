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
      (err) => err !== lost,
    );
    const settled = await Promise.allSettled([run(1), run(2)]);
    for (const s of settled) assert.equal((s as PromiseRejectedResult).reason, lost);
    assert.deepEqual(batches, [[1, 2]], 'a batch that may have committed is not run again');
  });
});
