// Encryption at rest for upstream secrets (tokens, PKCE verifiers, nonces): AES-256-GCM, a random 12-byte IV per
// value, a 16-byte tag. Stored form `v1.<kid>.<b64url(iv)>.<b64url(ciphertext‖tag)>`. The AAD names the table, column
// and row, so a value copied elsewhere does not decrypt. Writes use the first key; reads pick the key by kid.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { UpstreamKey } from './config.ts';

export type { UpstreamKey } from './config.ts';

/** Which value a ciphertext belongs to: part of the AAD. */
export interface SecretSlot {
  table: 'upstream_logins' | 'upstream_flows';
  column: 'access_token_enc' | 'refresh_token_enc' | 'verifier_enc' | 'nonce_enc';
  rowId: string;
}

/**
 * A stored value that cannot be decrypted: an unknown kid (a key removed too early), a failed tag (a value moved or
 * altered), or a malformed value. A configuration problem, never an upstream one: log it (without the value) and
 * answer 500; never revoke anything because of it.
 */
export class UpstreamSecretError extends Error {
  constructor(
    readonly kid: string | undefined,
    readonly slot: SecretSlot,
    reason: string,
  ) {
    super(
      `cannot decrypt ${slot.table}.${slot.column} of row ${slot.rowId}${kid ? ` (key "${kid}")` : ''}: ${reason}`,
    );
    this.name = 'UpstreamSecretError';
  }

  /** What to log: the key id and where, never the value. */
  get logFields(): Record<string, string | undefined> {
    return { kid: this.kid, table: this.slot.table, column: this.slot.column, rowId: this.slot.rowId };
  }
}

export interface UpstreamCipher {
  /** The kid new values are written under. */
  readonly currentKid: string;
  encrypt(plaintext: string, slot: SecretSlot): string;
  /** Throws UpstreamSecretError. */
  decrypt(stored: string, slot: SecretSlot): string;
  /** The kid a stored value names (undefined when malformed). */
  kidOf(stored: string): string | undefined;
}

function aad(slot: SecretSlot): Buffer {
  return Buffer.from(`latchkey-upstream:v1:${slot.table}:${slot.column}:${slot.rowId}`, 'utf8');
}

export function upstreamCipher(keys: readonly UpstreamKey[]): UpstreamCipher {
  const first = keys[0];
  const byKid = new Map(keys.map((k) => [k.kid, k.key]));
  return {
    get currentKid(): string {
      if (!first) throw new Error('no upstream token key is configured');
      return first.kid;
    },

    encrypt(plaintext, slot) {
      if (!first) throw new Error('no upstream token key is configured');
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', first.key, iv);
      cipher.setAAD(aad(slot));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `v1.${first.kid}.${iv.toString('base64url')}.${body.toString('base64url')}`;
    },

    decrypt(stored, slot) {
      const parts = stored.split('.');
      const kid = parts[1];
      if (parts.length !== 4 || parts[0] !== 'v1' || !kid) {
        throw new UpstreamSecretError(undefined, slot, 'not a v1 value');
      }
      const key = byKid.get(kid);
      if (!key) throw new UpstreamSecretError(kid, slot, 'no configured key has this kid');
      const iv = Buffer.from(parts[2] ?? '', 'base64url');
      const body = Buffer.from(parts[3] ?? '', 'base64url');
      if (iv.length !== 12 || body.length < 16) throw new UpstreamSecretError(kid, slot, 'malformed value');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv);
        decipher.setAAD(aad(slot));
        decipher.setAuthTag(body.subarray(body.length - 16));
        return Buffer.concat([
          decipher.update(body.subarray(0, body.length - 16)),
          decipher.final(),
        ]).toString('utf8');
      } catch {
        throw new UpstreamSecretError(kid, slot, 'authentication failed');
      }
    },

    kidOf(stored) {
      const parts = stored.split('.');
      return parts.length === 4 && parts[0] === 'v1' ? parts[1] : undefined;
    },
  };
}
