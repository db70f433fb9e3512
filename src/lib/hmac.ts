// HMAC-SHA-256 (RFC 2104) as two one-shot SHA-256 digests: H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)). The same bytes as
// Node's createHmac (test/lib/hmac.test.ts checks it against createHmac and RFC 4231's vectors) in half the time: an
// Hmac object costs an OpenSSL context each, and every token minted or checked takes one (token tags, seal keys).
import { digestBytes as sha256 } from './crypto.ts';

const BLOCK = 64;

/** A key prepared once: its two padded blocks. For a fixed key used on every token (the token tag key). */
export class HmacSha256 {
  readonly #ipad: Buffer;
  readonly #opad: Buffer;

  constructor(key: Buffer) {
    // RFC 2104 §2: a key longer than the block is hashed first; a shorter one is padded with zeros.
    const k = key.length > BLOCK ? sha256(key) : key;
    this.#ipad = Buffer.alloc(BLOCK, 0x36);
    this.#opad = Buffer.alloc(BLOCK, 0x5c);
    for (let i = 0; i < k.length; i++) {
      this.#ipad[i]! ^= k[i]!;
      this.#opad[i]! ^= k[i]!;
    }
  }

  /** The 32-byte MAC of `message` (a string is taken as UTF-8). */
  digest(...message: (string | Buffer)[]): Buffer {
    const parts = message.map((m) => (typeof m === 'string' ? Buffer.from(m) : m));
    const inner = sha256(Buffer.concat([this.#ipad, ...parts]));
    return sha256(Buffer.concat([this.#opad, inner]));
  }
}

/** HMAC-SHA-256 of `message` under `key`, for a key used once (each seal's salt and derived key). */
export function hmacSha256(key: Buffer, ...message: (string | Buffer)[]): Buffer {
  return new HmacSha256(key).digest(...message);
}
