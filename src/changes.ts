// The server's view of change notifications (store/changes.ts announces them with NOTIFY). Caches subscribe here
// and are cleared on every notification, on every instance. While the channel is down `listening` is false and
// caches must not serve. After a change it made itself, an instance calls flush(): its own caches are cleared at
// once, and the call returns only when a marker sent after the change has come back through the channel, so every
// notification before it has been delivered by the database (notifications arrive in commit order).
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Database } from './db/database.ts';
import { CHANGES_CHANNEL, notifyMarker } from './store/changes.ts';

const FLUSH_TIMEOUT_MS = 2000;

export class ChangeFeed {
  private readonly subscribers = new Set<(listening: boolean) => void>();
  private readonly waiters = new Map<string, () => void>();
  private unlisten: (() => Promise<void>) | undefined;
  listening = false;

  private constructor(
    private readonly db: Database,
    private readonly log: FastifyBaseLogger,
  ) {}

  static async start(db: Database, log: FastifyBaseLogger): Promise<ChangeFeed> {
    const feed = new ChangeFeed(db, log);
    feed.unlisten = await db.listen(
      CHANGES_CHANNEL,
      (payload) => feed.received(payload),
      (listening) => feed.stateChanged(listening),
    );
    return feed;
  }

  /** `fn(listening)` runs on every change (and on every change of the channel's state): drop what you cache. */
  subscribe(fn: (listening: boolean) => void): void {
    this.subscribers.add(fn);
  }

  private received(payload: string): void {
    for (const fn of this.subscribers) fn(this.listening);
    if (payload.startsWith('flush:')) {
      const id = payload.slice('flush:'.length);
      this.waiters.get(id)?.();
      this.waiters.delete(id);
    }
  }

  private stateChanged(listening: boolean): void {
    this.listening = listening;
    if (!listening) this.log.warn('change notifications lost: caches are off until they are back');
    for (const fn of this.subscribers) fn(listening);
  }

  /** Call after this instance changed something that caches may hold (a revocation). */
  async flush(): Promise<void> {
    for (const fn of this.subscribers) fn(this.listening);
    if (!this.listening) return;
    const id = randomUUID();
    const echoed = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        this.log.warn('change notification did not come back in time');
        resolve();
      }, FLUSH_TIMEOUT_MS);
      this.waiters.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    await notifyMarker(this.db.prisma, `flush:${id}`);
    await echoed;
  }

  async stop(): Promise<void> {
    for (const resolve of this.waiters.values()) resolve();
    this.waiters.clear();
    await this.unlisten?.();
  }
}
