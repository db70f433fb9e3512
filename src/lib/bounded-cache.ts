// A size-bounded in-memory map whose entries expire. It serves the authorization server's caches
// (src/oauth/change-cache.ts) and the resource-server kit's token cache (src/resource-server/cache.ts), so
// both bound their memory the same way: at most `maxEntries` entries, each dropped once its expiry passes, the
// least recently used evicted first. Time comes from an injected `now` so tests move it instead of sleeping.

export interface BoundedCacheOptions {
  /** At most this many entries; 0 or less stores nothing. */
  maxEntries: number;
  /** Epoch milliseconds. */
  now: () => number;
}

interface Entry<V> {
  value: V;
  /** Epoch ms at and after which the entry is not used. */
  expiresAt: number;
}

export class BoundedCache<K, V> {
  // A Map iterates in insertion order; re-inserting on use keeps the least recently used first.
  private readonly entries = new Map<K, Entry<V>>();
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: BoundedCacheOptions) {
    this.maxEntries = options.maxEntries;
    this.now = options.now;
  }

  get size(): number {
    return this.entries.size;
  }

  keys(): K[] {
    return [...this.entries.keys()];
  }

  /** The live value for `key`, which becomes the most recently used; an expired entry is dropped. */
  /** `now`: the caller's reading of the same clock, when it has one (one reading per lookup on hot paths). */
  get(key: K, now?: number): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (entry.expiresAt <= (now ?? this.now())) return undefined;
    this.entries.set(key, entry);
    return entry.value;
  }

  /** Stores `value` until `expiresAt` (epoch ms), evicting the least recently used entries to make room. */
  set(key: K, value: V, expiresAt: number): void {
    this.entries.delete(key);
    if (this.maxEntries <= 0 || expiresAt <= this.now()) return;
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAt });
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
