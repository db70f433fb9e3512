// An in-memory cache that is only ever as old as the last change notification (README: How it is built). Every
// notification clears it, on every instance (store/changes.ts announces each change in its transaction); while the
// notification channel is down, or this instance's heartbeat is stale (src/changes.ts: fresh), it serves nothing and
// stores nothing. A value read from the database is stored only
// if no notification arrived while it was being read (`generation`), so a read that raced a change cannot be kept.
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
  }

  get size(): number {
    return this.entries.size;
  }
}

/** `load(key)` through `cache`: a hit, or a database read stored only if no change raced it. Misses are not kept. */
export async function cachedLookup<V>(
  cache: ChangeCache<V>,
  key: string,
  load: (key: string) => Promise<V | null>,
): Promise<V | null> {
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const generation = cache.generation;
  const value = await load(key);
  if (value !== null) cache.set(key, value, generation);
  return value;
}
