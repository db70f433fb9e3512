// Sealed values (src/lib/seal.ts): AES-256-GCM under an HKDF-SHA-256 key from a secret; only that secret and the
// same context open them, and any change to the sealed text is refused.
import assert from 'node:assert/strict';
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { randomToken } from '../../src/lib/crypto.ts';
import { hkdfSha256, openWithSecret, sealWithSecret } from '../../src/lib/seal.ts';

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

  it('derives its key exactly as HKDF-SHA-256 does (RFC 5869), so values sealed before still open', () => {
    for (let i = 0; i < 20; i++) {
      const ikm = randomToken(32, 'lk_rt_');
      const salt = randomBytes(16);
      const info = `latchkey sealed value v1\0${randomToken(8)}`;
      assert.deepEqual(hkdfSha256(ikm, salt, info), Buffer.from(hkdfSync('sha256', ikm, salt, info, 32)));
    }
    // RFC 5869 Appendix A.1 (test case 1), the first 32 bytes of its output: a known answer, not only agreement.
    const known = hkdfSha256(
      Buffer.alloc(22, 0x0b),
      Buffer.from('000102030405060708090a0b0c', 'hex'),
      Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex'),
    );
    assert.equal(known.toString('hex'), '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf');
    // A value sealed by hand with Node's own hkdfSync, as the previous version sealed, opens.
    const salt = randomBytes(16);
    const iv = randomBytes(12);
    const key = hkdfSync('sha256', secret, salt, `latchkey sealed value v1\0${context}`, 32);
    const cipher = createCipheriv('aes-256-gcm', Buffer.from(key), iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    const sealed = ['v1', ...[salt, iv, body, cipher.getAuthTag()].map((b) => b.toString('base64url'))].join(
      '.',
    );
    assert.equal(openWithSecret(secret, context, sealed), value);
  });
});
