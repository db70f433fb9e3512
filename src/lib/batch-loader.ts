// Coalesces concurrent lookups by key into one load of many keys (a DataLoader-style batcher without its cache).
// Keys asked for in the same turn of the event loop go out together at its end (setImmediate runs once the I/O
// callbacks of that turn, and the promise jobs they start, are done); while `maxInFlight` loads are under way, new
// keys wait for one of them to return, so the batches grow with the load instead of the number of loads. A key asked
// for twice in a batch is loaded once and both callers get the answer. A key is never answered by a load that was
// sent before it was asked for: a load started before a change was applied must not answer a request made after it.
// A failed load rejects every caller of that batch with its error, and the next batch starts afresh.

export interface BatchLoaderOptions {
  /** The most keys in one load; a batch that reaches it goes out at once. */
  maxBatch: number;
  /** The most loads under way at once; further keys wait for one to return. */
  maxInFlight: number;
}

interface Waiter<V> {
  resolve: (value: V | undefined) => void;
  reject: (err: unknown) => void;
}

export class BatchLoader<K, V> {
  private pending = new Map<K, Waiter<V>[]>();
  private scheduled: NodeJS.Immediate | undefined;
  private inFlight = 0;

  /** `loadMany(keys)` answers each key it finds; a key missing from its map is answered `undefined`. */
  constructor(
    private readonly loadMany: (keys: K[]) => Promise<ReadonlyMap<K, V>>,
    private readonly options: BatchLoaderOptions,
  ) {}

  load(key: K): Promise<V | undefined> {
    return new Promise((resolve, reject) => {
      const waiting = this.pending.get(key);
      if (waiting) {
        waiting.push({ resolve, reject });
        return;
      }
      this.pending.set(key, [{ resolve, reject }]);
      if (this.pending.size >= this.options.maxBatch) this.flush();
      else this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    // At the bound, the keys wait: the next load to return sends them.
    while (this.pending.size > 0 && this.inFlight < this.options.maxInFlight) this.send(this.take());
  }

  /** The oldest keys still waiting, at most maxBatch of them (a Map iterates in insertion order). */
  private take(): Map<K, Waiter<V>[]> {
    if (this.pending.size <= this.options.maxBatch) {
      const all = this.pending;
      this.pending = new Map();
      return all;
    }
    const batch = new Map<K, Waiter<V>[]>();
    for (const [key, waiters] of this.pending) {
      if (batch.size === this.options.maxBatch) break;
      batch.set(key, waiters);
      this.pending.delete(key);
    }
    return batch;
  }

  private send(batch: Map<K, Waiter<V>[]>): void {
    this.inFlight++;
    // A loader that throws instead of rejecting fails its batch the same way.
    void new Promise<ReadonlyMap<K, V>>((resolve) => resolve(this.loadMany([...batch.keys()])))
      .then(
        (found) => {
          for (const [key, waiters] of batch) for (const w of waiters) w.resolve(found.get(key));
        },
        (err: unknown) => {
          for (const waiters of batch.values()) for (const w of waiters) w.reject(err);
        },
      )
      .finally(() => {
        this.inFlight--;
        this.flush();
      });
  }
}
