// HMAC-SHA-256 by two one-shot digests (src/lib/hmac.ts): RFC 4231's known answers, and the same bytes as Node's
// createHmac for keys of every length around the block size and messages given in parts.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { HmacSha256, hmacSha256 } from '../../src/lib/hmac.ts';

describe('HMAC-SHA-256', () => {
  it("gives RFC 4231's answers: a short key, a key shorter than the output, a key longer than the block", () => {
    const cases: [Buffer, string, string][] = [
      [
        Buffer.alloc(20, 0x0b),
        'Hi There',
        'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
      ],
      [
        Buffer.from('Jefe'),
        'what do ya want for nothing?',
        '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
      ],
      [
        Buffer.alloc(131, 0xaa),
        'Test Using Larger Than Block-Size Key - Hash Key First',
        '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
      ],
    ];
    for (const [key, data, mac] of cases) {
      assert.equal(hmacSha256(key, data).toString('hex'), mac);
      assert.equal(new HmacSha256(key).digest(data).toString('hex'), mac);
    }
  });

  it('matches createHmac for keys of 0 to 130 bytes, messages of any length, in one part or several', () => {
    for (let length = 0; length <= 130; length++) {
      const key = randomBytes(length);
      const mac = new HmacSha256(key);
      const message = randomBytes(length * 3);
      const text = `lk_at_${randomBytes(length).toString('base64url')}ü`;
      assert.deepEqual(
        mac.digest(message),
        createHmac('sha256', key).update(message).digest(),
        `key ${length}`,
      );
      assert.deepEqual(mac.digest(text), createHmac('sha256', key).update(text).digest(), `text ${length}`);
      const [a, b] = [message.subarray(0, length), message.subarray(length)];
      assert.deepEqual(
        hmacSha256(key, a, 'x', b),
        createHmac('sha256', key).update(a).update('x').update(b).digest(),
      );
    }
  });

  it('keeps its own copy of the key: changing the caller buffer afterwards changes nothing', () => {
    const key = randomBytes(32);
    const mac = new HmacSha256(key);
    const before = mac.digest('token');
    key.fill(0);
    assert.deepEqual(mac.digest('token'), before);
  });
});
