// An in-memory cache that is only ever as old as the last change notification (README: How it is built). Every
// notification clears it, on every instance (store/changes.ts announces each change in its transaction); while the
// notification channel is down, or this instance's heartbeat is stale (src/changes.ts: fresh), it serves nothing and
// stores nothing. A value read from the database is stored only
// if no notification arrived while it was being read (`generation`), so a read that raced a change cannot be kept.
// lookup() also shares one read among the requests that miss together (every request under way when a busy entry
// expires), but never a read that started before the last notification: a request that follows a change (say, a
// deletion every instance has applied) always gets a read that started after it.
import type { ChangeFeed } from '../changes.ts';
import { BoundedCache } from '../lib/bounded-cache.ts';
import type { Clock } from '../lib/clock.ts';

export type ChangeSource = Pick<ChangeFeed, 'listening' | 'subscribe' | 'fresh'>;

export interface ChangeCacheOptions {
  maxEntries: number;
  /** No entry lives longer than this, notification or not. */
  ttlSeconds: number;
}

export class ChangeCache<V> {
  private readonly entries: BoundedCache<string, V>;
  /** Reads under way, by key, all started since the last notification (clear() forgets them). */
  private readonly loading = new Map<string, Promise<V | null>>();
  private gen = 0;

  constructor(
    private readonly changes: ChangeSource,
    private readonly clock: Clock,
    private readonly options: ChangeCacheOptions,
  ) {
    this.entries = new BoundedCache({ maxEntries: options.maxEntries, now: () => clock.now().getTime() });
    changes.subscribe(() => this.clear());
  }

  /** Whether the cache may serve: the notification channel is up and this instance's heartbeat is fresh. */
  get enabled(): boolean {
    return this.changes.fresh(this.clock.now().getTime());
  }

  /** Take before reading what will be stored, and pass to set(). */
  get generation(): number {
    return this.gen;
  }

  get(key: string): V | undefined {
    // One clock reading serves both the trust check and the entry's expiry (the hot path reads the clock once).
    const now = this.clock.now().getTime();
    if (!this.changes.fresh(now)) return undefined;
    return this.entries.get(key, now);
  }

  /** Stores `value` for at most ttlSeconds (and never past `expiresAt`), unless a change arrived since `generation`. */
  set(key: string, value: V, generation: number, expiresAt?: Date): void {
    if (!this.changes.listening || generation !== this.gen) return;
    const ttlEnd = this.clock.now().getTime() + this.options.ttlSeconds * 1000;
    this.entries.set(key, value, Math.min(ttlEnd, expiresAt?.getTime() ?? ttlEnd));
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.gen++;
    this.entries.clear();
    this.loading.clear();
  }

  /**
   * `load(key)` through the cache: a hit, or a database read that the requests missing together share. The value is
   * stored unless it is null or a change raced the read, and never past `until(value)` (undefined: ttlSeconds).
   * While the cache may not serve (enabled is false), every call reads for itself.
   */
  lookup(
    key: string,
    load: (key: string) => Promise<V | null>,
    until?: (value: V) => Date | undefined,
  ): Promise<V | null> {
    const now = this.clock.now().getTime();
    if (!this.changes.fresh(now)) return load(key);
    const hit = this.entries.get(key, now);
    if (hit !== undefined) return Promise.resolve(hit);
    const pending = this.loading.get(key);
    if (pending) return pending;
    const generation = this.gen;
    const read = load(key).then(
      (value) => {
        this.settle(key, read);
        if (value !== null) this.set(key, value, generation, until?.(value));
        return value;
      },
      (error: unknown) => {
        this.settle(key, read);
        throw error;
      },
    );
    this.loading.set(key, read);
    return read;
  }

  private settle(key: string, read: Promise<V | null>): void {
    // A notification may have replaced this read with a newer one meanwhile; that one stays.
    if (this.loading.get(key) === read) this.loading.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
