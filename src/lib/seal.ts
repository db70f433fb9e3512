// Sealing a value under a secret only its holder knows: AES-256-GCM with a key derived by HKDF-SHA-256 (RFC 5869)
// from that secret. Used to keep a refresh response for the reuse window without keeping its tokens in plaintext:
// the key comes from the presented (old) refresh token, of which only a hash is stored, so the database alone
// cannot open it. The secret must carry full entropy (a 256-bit random token): HKDF does no key stretching.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { randomPooled } from './crypto.ts';
import { hmacSha256 } from './hmac.ts';

const VERSION = 'v1';
const INFO = 'latchkey sealed value v1';

/**
 * HKDF-SHA-256 (RFC 5869) for one 32-byte output block: extract, PRK = HMAC(salt, ikm); expand, T(1) =
 * HMAC(PRK, info || 0x01). The same bytes as `hkdfSync('sha256', ikm, salt, info, 32)` (test/lib/seal.test.ts), in two
 * HMACs (src/lib/hmac.ts): Node's hkdfSync took ten times as long, on every refresh rotation.
 */
export function hkdfSha256(ikm: string | Buffer, salt: Buffer, info: string | Buffer): Buffer {
  const prk = hmacSha256(salt, ikm);
  return hmacSha256(prk, info, ONE);
}
const ONE = Buffer.from([1]);

function deriveKey(secret: string, salt: Buffer, context: string): Buffer {
  return hkdfSha256(secret, salt, `${INFO}\0${context}`);
}

/** Seals `plaintext` under `secret`; `context` (e.g. a row id) is bound into the key and the tag. */
export function sealWithSecret(secret: string, context: string, plaintext: string): string {
  const salt = randomPooled(16);
  const iv = randomPooled(12);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(secret, salt, context), iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const parts = [salt, iv, body, cipher.getAuthTag()].map((b) => b.toString('base64url'));
  return [VERSION, ...parts].join('.');
}

/** Opens a value sealed by sealWithSecret; undefined when the secret, context or value do not match. */
export function openWithSecret(secret: string, context: string, sealed: string): string | undefined {
  const [version, ...parts] = sealed.split('.');
  if (version !== VERSION || parts.length !== 4) return undefined;
  const [salt, iv, body, tag] = parts.map((p) => Buffer.from(p, 'base64url')) as [
    Buffer,
    Buffer,
    Buffer,
    Buffer,
  ];
  if (salt.length !== 16 || iv.length !== 12 || tag.length !== 16) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', deriveKey(secret, salt, context), iv, {
      authTagLength: 16,
    });
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
