// Random secrets, their at-rest hashes, and constant-time comparison.
// Tokens, codes, secrets and session ids carry 256 bits and are stored only as SHA-256 (RFC 6819 §5.1.4.1.3).
import { hash, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';

const POOL_BYTES = 8192;
let pool = Buffer.alloc(0);
let pooled = 0;

/**
 * `n` bytes from the CSPRNG, drawn from a pool it refills 8 KiB at a time: one call into OpenSSL serves some 200
 * tokens instead of one (the /token hot path mints two or three per request). Each byte is handed out once, and a
 * refill allocates a new pool, so a returned view is never overwritten.
 */
export function randomPooled(n: number): Buffer {
  if (n > POOL_BYTES / 4) return randomBytes(n);
  if (pooled + n > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    pooled = 0;
  }
  pooled += n;
  return pool.subarray(pooled - n, pooled);
}

/** Drops what is left of the pool, so the next draw starts a fresh one (a test fixes what that one holds). */
export function resetRandomPool(): void {
  pooled = pool.length;
}

/** A random URL-safe secret of `bytes` bytes (default 32 = 256 bits). */
export function randomToken(bytes = 32, prefix = ''): string {
  return prefix + randomBytes(bytes).toString('base64url');
}

/** SHA-256 of a secret, hex-encoded: the only form in which secrets are stored. */
export function hashSecret(secret: string): string {
  // crypto.hash: the one-shot digest, several times cheaper than a Hash object on the /introspect hot path.
  return hash('sha256', secret, 'hex');
}

/**
 * The 32 bytes of a SHA-256 digest (a string is taken as UTF-8). Through a binary (latin1) string: crypto.hash's
 * 'buffer' output took twice as long as this (Node 20), and every /introspect call verifies its caller's secret.
 */
export function digestBytes(s: string | Buffer): Buffer {
  return Buffer.from(hash('sha256', s, 'binary'), 'binary');
}

/** Compares two strings in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const ha = digestBytes(a);
  const hb = digestBytes(b);
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

// The stored hash last verified against, as bytes: a busy resource server presents the same one on every call, and
// decoding its hex each time cost a tenth of the check. It is a stored hash, not a secret; whether it matches the last
// one depends on nothing a caller sends.
let lastStoredHash = '';
let lastStoredBytes = Buffer.alloc(0);

/** Checks a presented secret against a stored SHA-256 hash, in constant time. */
export function verifySecret(presented: string, storedHash: string): boolean {
  // Both sides are 32-byte digests (64 hex characters), so they compare directly in constant time.
  const a = digestBytes(presented);
  if (storedHash !== lastStoredHash) {
    lastStoredBytes = Buffer.from(storedHash, 'hex');
    lastStoredHash = storedHash;
  }
  return lastStoredBytes.length === a.length && timingSafeEqual(a, lastStoredBytes);
}

// argon2id (@node-rs/argon2's default algorithm), OWASP's second recommended profile (19 MiB, t=2, p=1).
const ARGON2_OPTIONS = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return argon2Hash(password, ARGON2_OPTIONS);
}

// Verifying against this hash when an email is unknown keeps the response time the same.
let dummyHash: Promise<string> | undefined;

export async function verifyPassword(password: string, hash: string | null | undefined): Promise<boolean> {
  if (!hash) {
    dummyHash ??= hashPassword(randomToken());
    await argon2Verify(await dummyHash, password).catch(() => false);
    return false;
  }
  try {
    return await argon2Verify(hash, password);
  } catch {
    return false;
  }
}
