// A small, bounded cache of positive introspection answers. Keys are SHA-256 of the token, so a heap dump or a
// debugger never shows a bearer token; the bound and least-recently-used eviction are the
// server's own bounded cache (src/lib/bounded-cache.ts), compiled into dist/lib beside the kit.
import { createHash } from 'node:crypto';
import { BoundedCache } from '../lib/bounded-cache.ts';

export interface KitClock {
  now(): Date;
}

/** What callers may look at: how full the cache is and which hashed keys it holds. */
export interface ReadonlyTokenCache {
  readonly size: number;
  keys(): string[];
}

export class TokenCache<T> implements ReadonlyTokenCache {
  private readonly entries: BoundedCache<string, T>;

  constructor(
    maxEntries: number,
    private readonly clock: KitClock,
  ) {
    this.entries = new BoundedCache({ maxEntries, now: () => clock.now().getTime() });
  }

  static keyOf(token: string): string {
    return createHash('sha256').update(token, 'utf8').digest('base64url');
  }

  get size(): number {
    return this.entries.size;
  }

  keys(): string[] {
    return this.entries.keys();
  }

  get(key: string): T | undefined {
    return this.entries.get(key);
  }

  set(key: string, value: T, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.entries.set(key, value, this.clock.now().getTime() + ttlMs);
  }

  clear(): void {
    this.entries.clear();
  }
}
