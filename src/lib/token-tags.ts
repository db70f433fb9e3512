// Keyed token tags (docs/security.md: Token format). Every token Latchkey mints is
// `prefix + base64url(32 random bytes) + tag`, the tag being the first TAG_BYTES bytes of
// HMAC-SHA256(key, prefix + random part), base64url. A token Latchkey did not mint is then known in-process, without
// a database lookup; and since the tag is keyed, a deliberate flood of made-up tokens cannot reach the database either
// (a bare checksum, as in GitHub's tokens, can be computed by anyone). The key is not an access secret: knowing it makes
// no token valid (a tagged token is still looked up by its hash), it only lets made-up tokens reach that lookup.
import { timingSafeEqual } from 'node:crypto';
import { randomPooled } from './crypto.ts';
import { HmacSha256 } from './hmac.ts';

/**
 * 48 bits: a made-up token passes with probability 2^-48, so a flood of a million tokens a second sends one to the
 * database every ~9 years, and one that passes costs only today's lookup. Six bytes are exactly 8 base64url
 * characters (no partial character), and keep tokens short in headers and logs of resource servers.
 */
export const TAG_BYTES = 6;
const TAG_CHARS = 8;
/** base64url of 32 random bytes. */
const RANDOM_CHARS = 43;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Tokens minted before tags existed stay valid until the longest lifetime of their kind has passed since the key was
 * created, plus this allowance: during a rolling upgrade, instances of the previous version keep minting untagged
 * tokens after the first upgraded instance created the key. An untagged token inside the window is looked up, as
 * every token was before; the allowance only delays the in-process refusal of the untagged shape.
 */
export const LEGACY_ALLOWANCE_SECONDS = 24 * 3600;

/**
 * What a presented token is: `tagged` (its tag verifies), `forged` (the tagged shape, a wrong tag), `untagged` (the
 * shape minted before tags), `malformed` (anything else, including another prefix).
 */
export type TokenShape = 'tagged' | 'forged' | 'untagged' | 'malformed';

export class TokenTags {
  readonly #mac: HmacSha256;
  /** When the deployment's key was created: untagged tokens are only minted before it (see legacyUntil). */
  readonly createdAt: Date;

  constructor(key: Buffer, createdAt: Date) {
    if (key.length < 32) throw new Error('a token tag key has at least 32 bytes');
    this.#mac = new HmacSha256(key);
    this.createdAt = createdAt;
  }

  #tag(body: string): string {
    return this.#mac.digest(body).subarray(0, TAG_BYTES).toString('base64url');
  }

  /** A new token: `prefix`, the random part (32 fresh random bytes unless given), and its tag. */
  mint(prefix: string, random: Buffer = randomPooled(32)): string {
    const body = prefix + random.toString('base64url');
    return body + this.#tag(body);
  }

  shape(token: string, prefix: string): TokenShape {
    if (!token.startsWith(prefix)) return 'malformed';
    const length = token.length - prefix.length;
    if (length !== RANDOM_CHARS && length !== RANDOM_CHARS + TAG_CHARS) return 'malformed';
    if (!BASE64URL.test(token.slice(prefix.length))) return 'malformed';
    if (length === RANDOM_CHARS) return 'untagged';
    const body = token.slice(0, -TAG_CHARS);
    // Both are 8 ASCII characters (checked above), so they compare byte for byte in constant time.
    const ok = timingSafeEqual(Buffer.from(this.#tag(body)), Buffer.from(token.slice(-TAG_CHARS)));
    return ok ? 'tagged' : 'forged';
  }

  /** Until when an untagged token of a kind living at most `lifetimeSeconds` may still be live. */
  legacyUntil(lifetimeSeconds: number): Date {
    return new Date(this.createdAt.getTime() + (lifetimeSeconds + LEGACY_ALLOWANCE_SECONDS) * 1000);
  }

  /**
   * Whether a presented token may be one Latchkey minted and is worth a lookup: tagged, or untagged while
   * `legacyUntil` (from legacyUntil) is still ahead of `now()`. Everything else is refused without a lookup.
   */
  mayBeLive(token: string, prefix: string, legacyUntil: Date, now: () => Date): boolean {
    const shape = this.shape(token, prefix);
    return shape === 'tagged' || (shape === 'untagged' && now() < legacyUntil);
  }
}
