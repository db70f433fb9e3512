// Acknowledgements of changes (README: How it is built). A revoking process, after its change committed, sends a
// marker through the change channel (store/changes.ts). Postgres delivers notifications to each listener in commit
// order, so an instance that receives the marker has already received the change and cleared its caches; it then
// answers on the ack channel with `<instanceId>:<markerId>`. The sender waits, with a bound, until every live
// instance (fresh heartbeat, store/instances.ts) has answered. This file keeps the bookkeeping of those waits.
import type { PrismaClient } from './generated/prisma/client.ts';
import { notifyMarker } from './store/changes.ts';
import type { InstanceStore } from './store/instances.ts';

/** How often an instance refreshes its heartbeat, how old one may be before waiters skip the instance, and how long
 * a waiter waits for acknowledgements. Internal: tests pass their own through buildApp. */
export const INSTANCE_DEFAULTS = { heartbeatMs: 5000, lapseMs: 15_000, ackTimeoutMs: 2000 } as const;

/** The timers a wait uses; tests pass ones they fire themselves. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending wait or heartbeat never keeps a process alive on its own.
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface Pending {
  missing: Set<string>;
  finish: () => void;
}

export class AckWaiters {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly timers: Timers = realTimers) {}

  /**
   * Starts waiting for `instanceIds` to acknowledge `markerId` (call it before sending the marker). Resolves with
   * the ids that had not acknowledged when `timeoutMs` ran out; empty when every one did.
   */
  expect(markerId: string, instanceIds: Iterable<string>, timeoutMs: number): Promise<string[]> {
    const missing = new Set(instanceIds);
    if (missing.size === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const handle = this.timers.setTimeout(() => entry.finish(), timeoutMs);
      const entry: Pending = {
        missing,
        finish: () => {
          this.timers.clearTimeout(handle);
          this.pending.delete(markerId);
          resolve([...missing]);
        },
      };
      this.pending.set(markerId, entry);
    });
  }

  /** A payload from the ack channel. Anything malformed or unexpected is ignored. */
  received(payload: string): void {
    const at = payload.indexOf(':');
    if (at <= 0) return;
    const entry = this.pending.get(payload.slice(at + 1));
    if (!entry) return;
    entry.missing.delete(payload.slice(0, at));
    if (entry.missing.size === 0) entry.finish();
  }

  /** Ends the wait for `markerId` now (its marker could not be sent). */
  cancel(markerId: string): void {
    this.pending.get(markerId)?.finish();
  }

  /** Ends every wait now (shutdown), each resolving with whoever had not answered. */
  stopAll(): void {
    for (const entry of [...this.pending.values()]) entry.finish();
  }

  get size(): number {
    return this.pending.size;
  }
}

/** Who was waited for after a change, and who did not answer in time (a warning has named them). */
export interface Confirmation {
  waitedFor: string[];
  missing: string[];
}

/** The one logger method a wait uses (a pino logger is one). */
export interface WarnLog {
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface ConfirmDeps {
  prisma: PrismaClient;
  instances: InstanceStore;
  acks: AckWaiters;
  /** Whether the ack channel is being listened to: without it no answer could arrive. */
  acksListening: boolean;
  log: WarnLog;
  now: Date;
  lapseMs: number;
  ackTimeoutMs: number;
  /** The caller's own instance id: it cleared its caches itself. */
  self?: string;
  markerId: string;
}

/** After a change committed: waits until every live instance has acknowledged it, or the bound runs out. */
export async function confirmChange(d: ConfirmDeps): Promise<Confirmation> {
  let live: string[];
  try {
    live = (await d.instances.live(new Date(d.now.getTime() - d.lapseMs))).filter((id) => id !== d.self);
  } catch (err) {
    d.log.warn({ err: { message: (err as Error).message } }, 'could not read the running instances');
    return { waitedFor: [], missing: [] };
  }
  if (live.length === 0) return { waitedFor: [], missing: [] };
  if (!d.acksListening) {
    d.log.warn({ instances: live }, 'acknowledgements unavailable: not waiting for other instances');
    return { waitedFor: live, missing: live };
  }
  const acked = d.acks.expect(d.markerId, live, d.ackTimeoutMs);
  try {
    await notifyMarker(d.prisma, d.markerId);
  } catch (err) {
    d.acks.cancel(d.markerId);
    d.log.warn({ err: { message: (err as Error).message } }, 'could not announce a change marker');
  }
  const missing = await acked;
  if (missing.length > 0)
    d.log.warn(
      { instances: missing },
      'instances did not acknowledge a change in time; going on without them',
    );
  return { waitedFor: live, missing };
}
