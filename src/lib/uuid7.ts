// UUID version 7 (RFC 9562 §5.7): a 48-bit Unix time in milliseconds, then 74 random bits. Rows whose ids are made
// this way land at the right-hand end of their primary-key index (and of the indexes of rows pointing at them), so a
// busy table's inserts touch a few recent index pages instead of a random page of the whole index each.
import { randomFillSync } from 'node:crypto';

const POOL = 16 * 256;
const pool = Buffer.alloc(POOL);
let used = POOL;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** A new UUIDv7 for time `ms` (default now). Ids made in one millisecond are not ordered among themselves. */
export function uuidv7(ms = Date.now()): string {
  if (used === POOL) {
    randomFillSync(pool);
    used = 0;
  }
  const b = pool.subarray(used, used + 16);
  used += 16;
  // 48 bits of time, big-endian: two 24-bit halves keep each below 2^53 arithmetic.
  const hi = Math.floor(ms / 2 ** 24);
  const lo = ms % 2 ** 24;
  b[0] = (hi >>> 16) & 0xff;
  b[1] = (hi >>> 8) & 0xff;
  b[2] = hi & 0xff;
  b[3] = (lo >>> 16) & 0xff;
  b[4] = (lo >>> 8) & 0xff;
  b[5] = lo & 0xff;
  b[6] = 0x70 | (b[6]! & 0x0f); // version 7
  b[8] = 0x80 | (b[8]! & 0x3f); // variant 10
  let s = '';
  for (let i = 0; i < 16; i++) {
    s += HEX[b[i]!]!;
    if (i === 3 || i === 5 || i === 7 || i === 9) s += '-';
  }
  return s;
}
