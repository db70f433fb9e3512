// A small, bounded cache of positive introspection answers. Keys are SHA-256 of the token, so a heap dump or a
// debugger never shows a bearer token (DESIGN: Security); Map insertion order gives least-recently-used eviction.
import { createHash } from 'node:crypto';

export interface KitClock {
  now(): Date;
}

interface Entry<T> {
  value: T;
  expiresAt: number;
}

/** What callers may look at: how full the cache is and which hashed keys it holds. */
export interface ReadonlyTokenCache {
  readonly size: number;
  keys(): string[];
}

export class TokenCache<T> implements ReadonlyTokenCache {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly maxEntries: number,
    private readonly clock: KitClock,
  ) {}

  static keyOf(token: string): string {
    return createHash('sha256').update(token, 'utf8').digest('base64url');
  }

  get size(): number {
    return this.entries.size;
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  get(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= this.clock.now().getTime()) return undefined;
    this.entries.set(key, entry); // most recently used goes last
    return entry.value;
  }

  set(key: string, value: T, ttlMs: number): void {
    if (ttlMs <= 0 || this.maxEntries <= 0) return;
    this.entries.delete(key);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    this.entries.set(key, { value, expiresAt: this.clock.now().getTime() + ttlMs });
  }

  clear(): void {
    this.entries.clear();
  }
}
