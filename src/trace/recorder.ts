// The trace recorder (README: Client traces): routes hand it steps, it queues them in memory and writes them in
// batches, off the request path — every second, as soon as `batchSize` are waiting, and on shutdown. The queue is
// bounded: when full, a step is dropped and counted. A failed write is logged and never reaches a request.
import type { Clock } from '../lib/clock.ts';
import type { TraceStore } from '../store/traces.ts';
import { cleanStep, type RecordedStep, type TraceStep } from './steps.ts';

export interface TraceRecorderOptions {
  store: Pick<TraceStore, 'append' | 'pruneOrphans'>;
  clock: Clock;
  /** Steps kept per client_id (TRACE_STEPS); 0 records nothing. */
  steps: number;
  log: { warn(obj: object, msg: string): void };
  /** Write as soon as this many steps wait (default 200). */
  batchSize?: number;
  /** Steps the queue holds at most; more are dropped and counted (default 10 000). */
  maxQueued?: number;
  /** Milliseconds between writes (default 1000). */
  intervalMs?: number;
}

/** How long the steps of a client_id that names no client are kept (a deleted client, a CIMD URL never resolved). */
export const ORPHAN_TTL_MS = 86_400_000;

interface Queued extends TraceStep {
  at: Date;
  repeat: number;
}

export class TraceRecorder {
  readonly enabled: boolean;
  private queue: Queued[] = [];
  /** The last queued step of each client_id in `queue`, to fold identical steps in a row into one. */
  private lastOf = new Map<string, Queued>();
  private writing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private nextOrphanPrune = 0;
  private droppedCount = 0;
  private failedCount = 0;
  private readonly batchSize: number;
  private readonly maxQueued: number;

  constructor(private readonly options: TraceRecorderOptions) {
    this.enabled = options.steps > 0;
    this.batchSize = options.batchSize ?? 200;
    this.maxQueued = options.maxQueued ?? 10_000;
  }

  /** Steps dropped because the queue was full. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Steps lost because their write failed. */
  get failed(): number {
    return this.failedCount;
  }

  /** Queues one step; cheap enough for any route (an array push, or a counter bump when folded). */
  record(step: TraceStep): void {
    if (!this.enabled) return;
    const last = this.lastOf.get(step.clientId);
    if (
      last &&
      last.step === step.step &&
      last.outcome === step.outcome &&
      last.detail === step.detail &&
      last.resource === step.resource
    ) {
      last.repeat++;
      last.at = this.options.clock.now();
      return;
    }
    if (this.queue.length >= this.maxQueued) {
      this.droppedCount++;
      return;
    }
    const queued: Queued = { ...step, at: this.options.clock.now(), repeat: 1 };
    this.queue.push(queued);
    this.lastOf.set(step.clientId, queued);
    if (this.queue.length === this.batchSize) void this.flush();
  }

  /** Writes every step queued so far; resolves once they (and any earlier batch) are written or given up. */
  flush(): Promise<void> {
    const batch = this.queue;
    if (batch.length > 0) {
      this.queue = [];
      this.lastOf = new Map();
    }
    this.writing = this.writing.then(() => this.write(batch));
    return this.writing;
  }

  /** Writes every second until stop(). */
  start(): void {
    if (!this.enabled || this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.options.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** Stops the timer and writes what is queued (on shutdown). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private async write(batch: readonly Queued[]): Promise<void> {
    const { store, steps, clock, log } = this.options;
    try {
      if (batch.length > 0) {
        const rows: RecordedStep[] = batch.map((q) => ({ ...cleanStep(q, q.at), repeat: q.repeat }));
        await store.append(rows, steps);
      }
      const now = clock.now().getTime();
      if (now >= this.nextOrphanPrune) {
        this.nextOrphanPrune = now + 3_600_000;
        await store.pruneOrphans(new Date(now - ORPHAN_TTL_MS));
      }
    } catch (err) {
      this.failedCount += batch.length;
      log.warn({ err, steps: batch.length }, 'client trace steps could not be written');
    }
  }
}
