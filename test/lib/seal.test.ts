// Sealed values (src/lib/seal.ts): AES-256-GCM under an HKDF-SHA-256 key from a secret; only that secret and the
// same context open them, and any change to the sealed text is refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomToken } from '../../src/lib/crypto.ts';
import { openWithSecret, sealWithSecret } from '../../src/lib/seal.ts';

describe('sealed values', () => {
  const secret = randomToken(32, 'lk_rt_');
  const context = '0b6f7c1e-8d2a-4a5b-9c3d-1e2f3a4b5c6d';
  const value = JSON.stringify({ accessToken: 'lk_at_example', refreshToken: 'lk_rt_example' });

  it('opens with the secret and context it was sealed under, and holds no plaintext', () => {
    const sealed = sealWithSecret(secret, context, value);
    assert.equal(openWithSecret(secret, context, sealed), value);
    assert.equal(sealed.includes('lk_'), false);
    assert.notEqual(sealWithSecret(secret, context, value), sealed, 'a fresh salt and IV each time');
  });

  it('refuses another secret, another context, a changed byte and a malformed value', () => {
    const sealed = sealWithSecret(secret, context, value);
    assert.equal(openWithSecret(randomToken(32, 'lk_rt_'), context, sealed), undefined);
    assert.equal(openWithSecret(secret, 'another-row', sealed), undefined);
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0] = body[0]! ^ 1;
    parts[3] = body.toString('base64url');
    assert.equal(openWithSecret(secret, context, parts.join('.')), undefined);
    for (const bad of ['', 'v1', 'v2.a.b.c.d', 'v1.a.b.c.d', `${sealed}.x`]) {
      assert.equal(openWithSecret(secret, context, bad), undefined, bad);
    }
  });
});
