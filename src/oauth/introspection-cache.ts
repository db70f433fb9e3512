// In-memory answers for /introspect, the hot path. Safe because every change that can make a token inactive
// NOTIFYs every instance (store/changes.ts), and any notification clears the cache. While the notification channel
// is down (or this instance's heartbeat is stale, src/changes.ts), nothing is served from the cache: answers come
// from the database, never stale. An answer read before a clear and stored after it is dropped (`generation`).
// Keys are SHA-256 hashes of tokens (never tokens); entries live at most `ttlSeconds` and never past the token's
// own expiry.
import { BoundedCache } from '../lib/bounded-cache.ts';
import type { Clock } from '../lib/clock.ts';

export class IntrospectionCache<T> {
  private readonly entries: BoundedCache<string, T>;
  private listening = false;
  private cleared = 0;

  constructor(
    private readonly clock: Clock,
    maxEntries = 50_000,
    private readonly ttlSeconds = 60,
    /** Checked on every read with that read's clock reading, no I/O: false while the heartbeat is stale. */
    private readonly trusted: (nowMs: number) => boolean = () => true,
  ) {
    this.entries = new BoundedCache({ maxEntries, now: () => clock.now().getTime() });
  }

  /** Whether answers may be served from memory (the notification channel is up). */
  get enabled(): boolean {
    return this.listening && this.trusted(this.clock.now().getTime());
  }

  /** Take it before reading the database; pass it to set(), which ignores the answer if a clear came between. */
  get generation(): number {
    return this.cleared;
  }

  setListening(listening: boolean): void {
    // Whatever happened while not listening is unknown: start empty either way.
    this.clear();
    this.listening = listening;
  }

  get(key: string): T | undefined {
    if (!this.listening) return undefined;
    // One clock reading serves both the trust check and the entry's expiry.
    const now = this.clock.now().getTime();
    if (!this.trusted(now)) return undefined;
    return this.entries.get(key, now);
  }

  set(key: string, value: T, expiresAt: Date, generation = this.cleared): void {
    if (!this.listening || generation !== this.cleared) return;
    const until = Math.min(expiresAt.getTime(), this.clock.now().getTime() + this.ttlSeconds * 1000);
    this.entries.set(key, value, until);
  }

  clear(): void {
    this.cleared++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
