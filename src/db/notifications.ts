// Every LISTEN of one Postgres handle on one connection. A channel's subscribers hear its notifications; when the
// connection is lost every subscriber hears onState(false) at once (notifications may have been missed on every
// channel), and once a new connection listens to every channel again, onState(true). Operations run one at a time,
// so a subscription made while the connection is being opened or re-opened is never half-listened.
import pg from 'pg';
import type { Logger } from 'pino';

interface Subscriber {
  onMessage(payload: string): void;
  onState(listening: boolean): void;
}

/** The listener connection's application_name, so an operator can tell it from the pool's in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = 'latchkey notifications';
const RETRY_MS = 1000;

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export class NotificationHub {
  private readonly channels = new Map<string, Set<Subscriber>>();
  /** The connection; every channel in `listened` has been LISTENed on it. */
  private client: pg.Client | undefined;
  private readonly listened = new Set<string>();
  private retry: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly logger?: Logger,
  ) {}

  /** Subscribes to `channel`; resolves once the subscriber is listening, or once a first attempt failed. */
  async subscribe(
    channel: string,
    onMessage: (payload: string) => void,
    onState: (listening: boolean) => void,
  ): Promise<() => Promise<void>> {
    const sub: Subscriber = { onMessage, onState };
    await this.serial(async () => {
      const subs = this.channels.get(channel) ?? new Set();
      subs.add(sub);
      this.channels.set(channel, subs);
      if (!this.client) {
        // open() tells every subscriber, this one too, once every channel is listened.
        if (!this.retry) await this.open();
        return;
      }
      if (!this.listened.has(channel)) {
        const c = this.client;
        try {
          await c.query(`LISTEN ${quoteIdentifier(channel)}`);
        } catch (err) {
          this.logger?.warn({ err: { message: (err as Error).message } }, 'notification channel unavailable');
          this.lost(c);
          return;
        }
        this.listened.add(channel);
      }
      sub.onState(true);
    });
    return () => this.serial(() => this.unsubscribe(channel, sub));
  }

  /** Ends the connection and any retry; subscribers hear nothing more. */
  close(): Promise<void> {
    return this.serial(async () => {
      this.closed = true;
      this.channels.clear();
      await this.disconnect();
    });
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => {});
    return run;
  }

  private async unsubscribe(channel: string, sub: Subscriber): Promise<void> {
    const subs = this.channels.get(channel);
    if (!subs?.delete(sub) || subs.size > 0) return;
    this.channels.delete(channel);
    if (this.channels.size === 0) return this.disconnect();
    if (this.client && this.listened.delete(channel)) {
      await this.client.query(`UNLISTEN ${quoteIdentifier(channel)}`).catch(() => {});
    }
  }

  private async disconnect(): Promise<void> {
    clearTimeout(this.retry);
    this.retry = undefined;
    const c = this.client;
    this.client = undefined;
    this.listened.clear();
    await c?.end().catch(() => {});
  }

  /** Connects and listens to every channel subscribed so far, then tells every subscriber it is listening. */
  private async open(): Promise<void> {
    this.retry = undefined;
    if (this.client || this.closed || this.channels.size === 0) return;
    const c = new pg.Client({
      connectionString: this.url,
      connectionTimeoutMillis: 5000,
      application_name: LISTENER_APPLICATION_NAME,
    });
    c.on('notification', (msg) => {
      for (const sub of this.channels.get(msg.channel) ?? []) sub.onMessage(msg.payload ?? '');
    });
    c.on('error', (err) => {
      this.logger?.warn({ err: { message: err.message } }, 'notification channel lost');
      this.lost(c);
    });
    c.on('end', () => this.lost(c));
    this.client = c;
    try {
      await c.connect();
      for (const channel of this.channels.keys()) {
        await c.query(`LISTEN ${quoteIdentifier(channel)}`);
        this.listened.add(channel);
      }
    } catch (err) {
      this.logger?.warn({ err: { message: (err as Error).message } }, 'notification channel unavailable');
      this.lost(c);
      return;
    }
    if (this.client === c) this.tellAll(true);
  }

  private tellAll(listening: boolean): void {
    for (const subs of this.channels.values()) for (const sub of subs) sub.onState(listening);
  }

  /** The connection `c` is gone: every subscriber may have missed notifications; try again in a second. */
  private lost(c: pg.Client): void {
    if (this.client !== c) return;
    this.client = undefined;
    this.listened.clear();
    c.end().catch(() => {});
    this.tellAll(false);
    if (this.closed || this.channels.size === 0 || this.retry) return;
    this.retry = setTimeout(() => void this.serial(() => this.open()), RETRY_MS);
  }
}
