// A size-bounded in-memory map whose entries expire. It serves the authorization server's caches
// (src/oauth/change-cache.ts) and the resource-server kit's token cache (src/resource-server/cache.ts), so
// both bound their memory the same way: at most `maxEntries` entries, each dropped once its expiry passes, and an
// entry not read since it was last considered evicted first ("second chance", an approximation of least recently
// used). A read only sets a flag: re-inserting the entry on every read, as a strict LRU over a Map does, made a read
// of a full cache cost ~140 µs instead of ~0.2 µs (V8 rehashes a Map that keeps filling up with deleted slots), which
// cut a busy instance's /introspect of a hot token to a third. Eviction walks the Map with one iterator kept from call
// to call: every live entry sits at or after it (whatever it passed was dropped or moved to the back), so it finds
// what a fresh walk from the front would, without stepping again over the deleted slots a full cache piles up at the
// front of V8's table until its next rehash. A fresh walk per eviction did that, and cost a full /introspect answer
// cache (50,000 entries, a new token every request) ~8 µs a request, a tenth of a first-seen token's CPU (measured).
// Time comes from an injected `now`.

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
  /** Read since it was set or last passed over by eviction. */
  used: boolean;
}

export class BoundedCache<K, V> {
  // A Map iterates in insertion order: the oldest first.
  private readonly entries = new Map<K, Entry<V>>();
  /** Where eviction goes on from (see the top of this file); undefined until the first eviction and after clear(). */
  private cursor: Iterator<[K, Entry<V>]> | undefined;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: BoundedCacheOptions) {
    this.maxEntries = options.maxEntries;
    this.now = options.now;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The keys, oldest first (set order; eviction moves a read entry to the back). */
  keys(): K[] {
    return [...this.entries.keys()];
  }

  /**
   * The live value for `key` (marked as used, so eviction passes it over once); an expired entry is dropped.
   * `now`: the caller's reading of the same clock, when it has one (one reading per lookup on hot paths).
   */
  get(key: K, now?: number): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= (now ?? this.now())) {
      this.entries.delete(key);
      return undefined;
    }
    entry.used = true;
    return entry.value;
  }

  /** Stores `value` until `expiresAt` (epoch ms), evicting to make room (see evictOne). */
  set(key: K, value: V, expiresAt: number): void {
    this.entries.delete(key);
    if (this.maxEntries <= 0 || expiresAt <= this.now()) return;
    while (this.entries.size >= this.maxEntries) this.evictOne();
    this.entries.set(key, { value, expiresAt, used: false });
  }

  /** Drops the oldest entry not read since it was last considered; a read one goes to the back, unmarked, once. */
  private evictOne(): void {
    // A Map iterator visits entries added after it was made and skips deleted ones (ECMAScript's Map iteration), so
    // a read entry moved to the back is met again; once it is done it stays done, and a new one starts at the front.
    for (;;) {
      let step = this.cursor?.next();
      if (!step || step.done) {
        this.cursor = this.entries.entries();
        step = this.cursor.next();
        if (step.done) return;
      }
      const [key, entry] = step.value;
      this.entries.delete(key);
      if (!entry.used) return;
      entry.used = false;
      this.entries.set(key, entry);
    }
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
    this.cursor = undefined;
  }
}
