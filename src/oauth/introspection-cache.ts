// In-memory answers for /introspect, the hot path. Safe because every change that can make a token inactive
// NOTIFYs every instance (store/changes.ts), and any notification clears the cache. While the notification channel
// is down, nothing is served from the cache: answers come from the database, never stale. Keys are SHA-256 hashes
// of tokens (never tokens); entries live at most `ttlSeconds` and never past the token's own expiry.
import { BoundedCache } from '../lib/bounded-cache.ts';
import type { Clock } from '../lib/clock.ts';

export class IntrospectionCache<T> {
  private readonly entries: BoundedCache<string, T>;
  private listening = false;

  constructor(
    private readonly clock: Clock,
    maxEntries = 50_000,
    private readonly ttlSeconds = 60,
  ) {
    this.entries = new BoundedCache({ maxEntries, now: () => clock.now().getTime() });
  }

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
    return this.entries.get(key);
  }

  set(key: string, value: T, expiresAt: Date): void {
    if (!this.listening) return;
    const until = Math.min(expiresAt.getTime(), this.clock.now().getTime() + this.ttlSeconds * 1000);
    this.entries.set(key, value, until);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
