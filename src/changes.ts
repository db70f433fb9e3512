// The server's view of change notifications (store/changes.ts announces them with NOTIFY) and of the other running
// instances (README: How it is built). Caches subscribe here and are cleared on every notification, on every
// instance. They serve only while this instance is trusted: its change channel is up and its heartbeat is fresh.
// After a change it made itself, an instance calls flush(): its own caches are cleared at once, and the call
// returns once every other live instance has acknowledged a marker sent after the change (src/acks.ts), or the
// bound ran out.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import {
  AckWaiters,
  type Confirmation,
  confirmChange,
  INSTANCE_DEFAULTS,
  realTimers,
  type Timers,
} from './acks.ts';
import type { Database } from './db/database.ts';
import type { Clock } from './lib/clock.ts';
import { ACKS_CHANNEL, CHANGES_CHANNEL, markerOf, notifyAck } from './store/changes.ts';
import { type InstanceStore, instanceStore } from './store/instances.ts';

export interface InstanceOptions {
  /** How often the heartbeat is written (default 5 s). */
  heartbeatMs?: number;
  /** A heartbeat older than this and other instances stop waiting for this one (default 3 × heartbeatMs). */
  lapseMs?: number;
  /** How long a revocation waits for the other instances' acknowledgements (default 2 s). */
  ackTimeoutMs?: number;
  timers?: Timers;
}

export class ChangeFeed {
  readonly instanceId = randomUUID();
  private readonly subscribers = new Set<(listening: boolean) => void>();
  private readonly acks: AckWaiters;
  private readonly instances: InstanceStore;
  private readonly timers: Timers;
  private readonly heartbeatMs: number;
  private readonly lapseMs: number;
  private readonly ackTimeoutMs: number;
  /** This instance stops trusting its caches one heartbeat before the others stop waiting for it. */
  private readonly trustMs: number;
  private readonly row: { id: string; host: string; pid: number; startedAt: Date };
  private unlisten: (() => Promise<void>)[] = [];
  private changesUp = false;
  private acksUp = false;
  private beatOk = false;
  private lastBeat = Number.NEGATIVE_INFINITY;
  private beatTimer: unknown;
  private markers = 0;
  private beating: Promise<boolean> | undefined;
  private started = false;
  private stopped = false;

  private constructor(
    private readonly db: Database,
    private readonly log: FastifyBaseLogger,
    private readonly clock: Clock,
    options: InstanceOptions,
  ) {
    this.timers = options.timers ?? realTimers;
    this.acks = new AckWaiters(this.timers);
    this.instances = instanceStore(db.prisma);
    this.heartbeatMs = options.heartbeatMs ?? INSTANCE_DEFAULTS.heartbeatMs;
    this.lapseMs = options.lapseMs ?? 3 * this.heartbeatMs;
    this.ackTimeoutMs = options.ackTimeoutMs ?? INSTANCE_DEFAULTS.ackTimeoutMs;
    this.trustMs = Math.max(this.lapseMs - this.heartbeatMs, this.heartbeatMs);
    this.row = { id: this.instanceId, host: hostname(), pid: process.pid, startedAt: clock.now() };
  }

  static async start(
    db: Database,
    log: FastifyBaseLogger,
    clock: Clock,
    options: InstanceOptions = {},
  ): Promise<ChangeFeed> {
    const feed = new ChangeFeed(db, log, clock, options);
    feed.unlisten.push(
      await db.listen(
        ACKS_CHANNEL,
        (payload) => feed.acks.received(payload),
        (up) => {
          feed.acksUp = up;
        },
      ),
    );
    feed.unlisten.push(
      await db.listen(
        CHANGES_CHANNEL,
        (payload) => feed.received(payload),
        (up) => feed.channelChanged(up),
      ),
    );
    // Rows of instances that died without a clean stop long ago are nobody's: remove them.
    const now = clock.now();
    await feed.instances.removeLapsed(new Date(now.getTime() - 10 * feed.lapseMs)).catch(() => 0);
    await feed.heartbeat();
    feed.started = true;
    feed.schedule();
    return feed;
  }

  /** Whether caches may serve: the change channel is up and the last heartbeat is recent (see fresh()). */
  get listening(): boolean {
    return this.changesUp && this.beatOk;
  }

  /**
   * The hot path's check, no I/O: listening, and the last heartbeat recent by the clock. A process that was
   * paused (its timers did not run) finds its heartbeat stale here before any timer says so.
   */
  fresh(nowMs: number = this.clock.now().getTime()): boolean {
    return this.changesUp && this.beatOk && nowMs - this.lastBeat < this.trustMs;
  }

  /** `fn(listening)` runs on every change (and on every change of the trust state): drop what you cache. */
  subscribe(fn: (listening: boolean) => void): void {
    this.subscribers.add(fn);
  }

  private emit(): void {
    const listening = this.listening;
    for (const fn of this.subscribers) fn(listening);
  }

  private received(payload: string): void {
    this.emit();
    const marker = markerOf(payload);
    // Acknowledged only after the caches were cleared above; our own markers need no answer.
    if (marker === undefined || marker.startsWith(`${this.instanceId}.`)) return;
    notifyAck(this.db.prisma, this.instanceId, marker).catch((err: unknown) =>
      this.log.warn({ err: { message: (err as Error).message } }, 'could not acknowledge a change'),
    );
  }

  private channelChanged(up: boolean): void {
    this.changesUp = up;
    if (!up) this.log.warn('change notifications lost: caches are off until they are back');
    this.emit();
    // Back: trusted again only after a fresh heartbeat (which clears the caches once more).
    if (up && this.started && !this.stopped) {
      this.beatOk = false;
      void this.heartbeat();
    }
  }

  /**
   * Writes this instance's heartbeat. Skipped while the change channel is down, so that the others stop waiting
   * for an instance that cannot hear them. True when written.
   */
  heartbeat(): Promise<boolean> {
    // One at a time: a stop waits for the one under way, so that it cannot write the row again after the stop.
    this.beating ??= this.beat().finally(() => {
      this.beating = undefined;
    });
    return this.beating;
  }

  private async beat(): Promise<boolean> {
    if (this.stopped) return false;
    const now = this.clock.now();
    if (!this.changesUp) {
      this.checkLapse(now);
      return false;
    }
    try {
      await this.instances.beat(this.row, now);
    } catch (err) {
      this.log.warn({ err: { message: (err as Error).message } }, 'instance heartbeat failed');
      this.checkLapse(this.clock.now());
      return false;
    }
    if (this.stopped) return false;
    const lapsed = !this.beatOk || now.getTime() - this.lastBeat >= this.trustMs;
    this.lastBeat = Math.max(this.lastBeat, now.getTime());
    if (lapsed && this.changesUp) {
      // Whatever the caches held before the lapse may be stale: they start empty.
      this.beatOk = true;
      this.emit();
    }
    return true;
  }

  private checkLapse(now: Date): void {
    if (!this.beatOk || now.getTime() - this.lastBeat < this.trustMs) return;
    this.beatOk = false;
    this.log.warn('instance heartbeat lapsed: caches are off until it is back');
    this.emit();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.beatTimer = this.timers.setTimeout(() => {
      void this.heartbeat().finally(() => this.schedule());
    }, this.heartbeatMs);
  }

  /** Call after this instance changed something that caches may hold (a revocation). */
  async flush(): Promise<void> {
    await this.flushConfirmed();
  }

  /** flush(), saying whom it waited for and who did not answer in time. */
  async flushConfirmed(): Promise<Confirmation> {
    this.emit();
    return confirmChange({
      prisma: this.db.prisma,
      instances: this.instances,
      acks: this.acks,
      acksListening: this.acksUp,
      log: this.log,
      now: this.clock.now(),
      lapseMs: this.lapseMs,
      ackTimeoutMs: this.ackTimeoutMs,
      self: this.instanceId,
      markerId: `${this.instanceId}.${++this.markers}`,
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.timers.clearTimeout(this.beatTimer);
    this.acks.stopAll();
    await this.beating;
    // A clean stop: nobody waits for this instance any more.
    await this.instances.remove(this.instanceId).catch(() => {});
    for (const unlisten of this.unlisten) await unlisten();
  }
}
