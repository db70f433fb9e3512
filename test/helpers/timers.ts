// Timers a test fires itself (src/acks.ts Timers): waits and heartbeats end when the test says, never on real time.
import type { Timers } from '../../src/acks.ts';

interface Pending {
  fn: () => void;
  ms: number;
}

export class ManualTimers implements Timers {
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  private armedWaiters: (() => void)[] = [];

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.next;
    this.pending.set(id, { fn, ms });
    for (const w of this.armedWaiters.splice(0)) w();
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** How many timers are set and not yet fired or cleared. */
  get size(): number {
    return this.pending.size;
  }

  /** The delays of the timers now set, in the order they were set. */
  get delays(): number[] {
    return [...this.pending.values()].map((p) => p.ms);
  }

  /** Resolves once at least `count` timers are set (at once if they already are). */
  async armed(count = 1): Promise<void> {
    while (this.pending.size < count) await new Promise<void>((resolve) => this.armedWaiters.push(resolve));
  }

  /** Fires every timer set now (not ones they set in turn). */
  fireAll(): void {
    const due = [...this.pending.entries()];
    this.pending.clear();
    for (const [, p] of due) p.fn();
  }
}
