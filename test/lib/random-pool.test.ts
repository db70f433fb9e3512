// randomPooled (src/lib/crypto.ts): CSPRNG bytes drawn from a pool, so minting a token is not one call into OpenSSL
// each. Every byte is handed out once, a returned view survives the pool's refill, and large asks bypass the pool.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomPooled } from '../../src/lib/crypto.ts';

describe('randomPooled', () => {
  it('hands out views of the asked length that never share bytes, across many refills', () => {
    const seen = new Set<string>();
    const kept: { view: Buffer; copy: Buffer }[] = [];
    for (let i = 0; i < 2000; i++) {
      const n = [12, 16, 32][i % 3] as number;
      const view = randomPooled(n);
      assert.equal(view.length, n);
      const hex = view.toString('hex');
      assert.ok(!seen.has(hex), 'no two draws alike');
      seen.add(hex);
      kept.push({ view, copy: Buffer.from(view) });
    }
    // 2000 draws of 20 bytes on average are several pools: none of the earlier views was written over.
    for (const { view, copy } of kept) assert.ok(view.equals(copy));
    // Consecutive draws are adjacent, not overlapping, slices of one pool (or of a new one).
    const a = randomPooled(32);
    const b = randomPooled(32);
    if (a.buffer === b.buffer) assert.equal(b.byteOffset, a.byteOffset + 32);
  });

  it('serves a large ask from the CSPRNG directly, not from the pool', () => {
    const big = randomPooled(4096);
    assert.equal(big.length, 4096);
    assert.notEqual(big.buffer, randomPooled(16).buffer);
    assert.ok(big.some((byte) => byte !== 0));
  });
});
