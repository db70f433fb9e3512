// In-memory answers for /introspect, the hot path. Safe because every change that can make a token inactive
// NOTIFYs every instance (store/changes.ts), and any notification clears the cache. While the notification channel
// is down, nothing is served from the cache: answers come from the database, never stale. Keys are SHA-256 hashes
// of tokens (never tokens); entries live at most `ttlSeconds` and never past the token's own expiry.
import type { Clock } from '../lib/clock.ts';

export interface CachedIntrospection<T> {
  value: T;
  /** Epoch ms after which the entry is not used. */
  until: number;
}

export class IntrospectionCache<T> {
  private readonly entries = new Map<string, CachedIntrospection<T>>();
  private listening = false;

  constructor(
    private readonly clock: Clock,
    private readonly maxEntries = 50_000,
    private readonly ttlSeconds = 60,
  ) {}

  /** Whether answers may be served from memory (the notification channel is up). */
  get enabled(): boolean {
    return this.listening;
  }

  setListening(listening: boolean): void {
    // Whatever happened while not listening is unknown: start empty either way.
    this.entries.clear();
    this.listening = listening;
  }

  get(key: string): T | undefined {
    if (!this.listening) return undefined;
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.until <= this.clock.now().getTime()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: T, expiresAt: Date): void {
    if (!this.listening) return;
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: drop the oldest entry.
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    const until = Math.min(expiresAt.getTime(), this.clock.now().getTime() + this.ttlSeconds * 1000);
    this.entries.set(key, { value, until });
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
