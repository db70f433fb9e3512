// PKCE (RFC 7636), S256 only: OAuth 2.1 §4.1.1 makes PKCE mandatory and `plain` is refused.
import { createHash } from 'node:crypto';
import { constantTimeEqual } from '../lib/crypto.ts';

/** RFC 7636 §4.1: code_verifier = 43*128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
/** An S256 challenge is BASE64URL(SHA-256(verifier)): exactly 43 characters, no padding. */
const S256_CHALLENGE = /^[A-Za-z0-9\-_]{43}$/;

export function isValidCodeVerifier(verifier: string): boolean {
  return VERIFIER.test(verifier);
}

export function isValidS256Challenge(challenge: string): boolean {
  return S256_CHALLENGE.test(challenge);
}

export function calculateS256Challenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** RFC 7636 §4.6: the server recomputes the challenge from the verifier and compares. */
export function verifyPkce(verifier: string, challenge: string): boolean {
  if (!isValidCodeVerifier(verifier)) return false;
  return constantTimeEqual(calculateS256Challenge(verifier), challenge);
}
