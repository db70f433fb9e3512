// UUIDv7 row ids (src/lib/uuid7.ts): RFC 9562's layout (time, version, variant), ordered by time, and random in the
// rest, so ids made in the same millisecond still differ.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { uuidv7 } from '../../src/lib/uuid7.ts';

const SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('uuidv7', () => {
  it('puts the time in milliseconds first, big-endian, then version 7 and variant 10', () => {
    // RFC 9562 Appendix A.6's example time: Tuesday, February 22, 2022 2:22:22.00 PM GMT-05:00.
    const id = uuidv7(0x017f22e279b0);
    assert.match(id, SHAPE);
    assert.equal(id.slice(0, 13), '017f22e2-79b0');
    assert.equal(uuidv7(0).slice(0, 13), '00000000-0000');
    assert.equal(uuidv7(2 ** 48 - 1).slice(0, 13), 'ffffffff-ffff');
    assert.match(uuidv7(2 ** 48 - 1), SHAPE);
  });

  it('sorts by time, as text and as Postgres sorts uuid (bytewise)', () => {
    const times = [1, 255, 256, 2 ** 24 - 1, 2 ** 24, 2 ** 32, Date.UTC(2026, 11, 1), 2 ** 47 + 3];
    const ids = times.map((t) => uuidv7(t));
    assert.deepEqual([...ids].sort(), ids);
  });

  it('differs in its random bits between ids of one millisecond (over more than one refill of its buffer)', () => {
    const ids = Array.from({ length: 1000 }, () => uuidv7(1_700_000_000_000));
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, SHAPE);
    // Every random hex digit position takes more than one value (a stuck position would show here).
    const random = ids.map((id) => id.replace(/-/g, '').slice(13));
    for (let i = 0; i < random[0]!.length; i++) {
      if (i === 3) continue; // the variant digit: 8, 9, a or b
      assert.ok(new Set(random.map((r) => r[i])).size > 8, `digit ${i}`);
    }
  });
});
