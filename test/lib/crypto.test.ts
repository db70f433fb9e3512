// verifySecret (src/lib/crypto.ts) keeps the bytes of the stored hash it last checked against: whatever order the
// checks come in, a secret passes only against its own hash.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashSecret, verifySecret } from '../../src/lib/crypto.ts';

describe('verifySecret', () => {
  const a = 'secret-a-0123456789abcdefghijklmnopqrstuvwxyz';
  const b = 'secret-b-0123456789abcdefghijklmnopqrstuvwxyz';
  const [hashA, hashB] = [hashSecret(a), hashSecret(b)];

  it('passes a secret only against its own hash, checks alternating or repeated', () => {
    const checks: [string, string, boolean][] = [
      [a, hashA, true],
      [b, hashA, false],
      [b, hashA, false],
      [b, hashB, true],
      [a, hashB, false],
      [a, hashA, true],
      [a, hashA, true],
      [b, hashB, true],
      ['', hashA, false],
    ];
    for (const [secret, stored, expected] of checks)
      assert.equal(
        verifySecret(secret, stored),
        expected,
        `${secret.slice(0, 8)} against ${stored.slice(0, 8)}`,
      );
  });

  it('refuses against a stored value that is not a SHA-256 hash, without throwing', () => {
    assert.equal(verifySecret(a, ''), false);
    assert.equal(verifySecret(a, 'abcd'), false);
    assert.equal(verifySecret(a, hashA.slice(0, 62)), false);
    assert.equal(verifySecret(a, hashA), true);
  });
});
