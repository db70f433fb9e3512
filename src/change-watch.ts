// A CLI command's changes reach every running instance before the command ends (README: How it is built). The CLI is
// not an instance: it listens on the change and ack channels before it writes anything; at the end it sends a
// marker through the change channel and waits for it to come back, which tells whether any change was announced
// meanwhile (notifications arrive in commit order). If one was, it sends a second marker and waits, with a bound,
// until every live instance has acknowledged it (src/acks.ts).
import { randomUUID } from 'node:crypto';
import {
  AckWaiters,
  type Confirmation,
  confirmChange,
  INSTANCE_DEFAULTS,
  realTimers,
  type Timers,
  type WarnLog,
} from './acks.ts';
import type { Database } from './db/database.ts';
import { ACKS_CHANNEL, CHANGES_CHANNEL, markerOf, notifyMarker } from './store/changes.ts';
import { instanceStore } from './store/instances.ts';

export interface ChangeWatchOptions {
  /** Where warnings go: instances that did not answer in time are named. */
  warn(message: string): void;
  timers?: Timers;
  now?: () => Date;
  lapseMs?: number;
  ackTimeoutMs?: number;
}

export interface ChangeWatch {
  /** Waits for the running instances if a change was announced since the watch began; undefined if none was. */
  settle(): Promise<Confirmation | undefined>;
  close(): Promise<void>;
}

export async function watchChanges(db: Database, options: ChangeWatchOptions): Promise<ChangeWatch> {
  const timers = options.timers ?? realTimers;
  const ackTimeoutMs = options.ackTimeoutMs ?? INSTANCE_DEFAULTS.ackTimeoutMs;
  const acks = new AckWaiters(timers);
  const echoes = new Map<string, () => void>();
  let changed = false;
  let acksUp = false;
  let changesUp = false;
  const unlisten = [
    await db.listen(
      ACKS_CHANNEL,
      (p) => acks.received(p),
      (up) => (acksUp = up),
    ),
    await db.listen(
      CHANGES_CHANNEL,
      (payload) => {
        const marker = markerOf(payload);
        if (marker === undefined) changed = true;
        else echoes.get(marker)?.();
      },
      (up) => {
        // Whatever was announced while the channel was down is unknown: assume a change.
        if (!up) changed = true;
        changesUp = up;
      },
    ),
  ];
  const log: WarnLog = {
    warn: (fields, message) =>
      options.warn(Array.isArray(fields.instances) ? `${message}: ${fields.instances.join(', ')}` : message),
  };

  /** Sends a marker and waits for it to come back to this command's own listener (bounded). */
  async function echo(): Promise<boolean> {
    if (!changesUp) return false;
    const id = `cli-${randomUUID()}`;
    let handle: unknown;
    const back = new Promise<boolean>((resolve) => {
      handle = timers.setTimeout(() => resolve(false), ackTimeoutMs);
      echoes.set(id, () => resolve(true));
    });
    try {
      await notifyMarker(db.prisma, id);
      return await back;
    } catch {
      return false;
    } finally {
      timers.clearTimeout(handle);
      echoes.delete(id);
    }
  }

  return {
    async settle() {
      // Without the echo nothing says whether a change went out: wait for the instances as if one had.
      if ((await echo()) && !changed) return undefined;
      return confirmChange({
        prisma: db.prisma,
        instances: instanceStore(db.prisma),
        acks,
        acksListening: acksUp,
        log,
        now: (options.now ?? (() => new Date()))(),
        lapseMs: options.lapseMs ?? INSTANCE_DEFAULTS.lapseMs,
        ackTimeoutMs,
        markerId: `cli-${randomUUID()}`,
      });
    },
    async close() {
      acks.stopAll();
      for (const u of unlisten) await u();
    },
  };
}
