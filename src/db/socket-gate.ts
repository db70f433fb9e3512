// Socket clients and the server share PGlite's one backend session, so they must take turns by whole sessions of
// work, not by single wire messages. @electric-sql/pglite-socket 0.2.17 runs each message under PGlite's query lock
// only, which on its own lets (measured in test/db/embedded.test.ts):
// - a server query land inside a socket client's open transaction, and vanish when that client rolls back;
// - a socket client's statement land inside a server transaction, and vanish when the server rolls back;
// - a socket client wait forever when it queries while the server is inside a transaction (its queue looks for the
//   previous client's next message and gives up until another message arrives);
// - and, though only event-loop timing prevents it today, a server query run between a client's Parse and Sync.
// The gate makes a socket client hold PGlite's transaction lock (the one its query(), exec() and transaction() take)
// from its first message until the backend answers ReadyForQuery "idle", i.e. until it is outside any statement
// sequence and any transaction. While a client holds it, the socket queue keeps serving that client only.
//
// One more effect of the shared session: a NOTIFY sent through the socket is answered to the socket client only,
// so the server's own LISTENers (cache invalidation) would never hear it. The gate re-sends each one on the
// server's side once the client's session is over.
import type { PGlite } from '@electric-sql/pglite';

const READY_FOR_QUERY = 0x5a; // 'Z': body is the transaction status
const NOTIFICATION = 0x41; // 'A': body is pid, channel\0, payload\0
const IDLE = 0x49; // 'I': not in a transaction block
const TERMINATE = 0x58; // 'X'

type RawStreamOptions = Parameters<PGlite['execProtocolRawStream']>[1];

export interface SocketGate {
  /** The PGlite instance to hand to PGLiteSocketServer. */
  readonly db: PGlite;
  /** Rolls back and releases a session a socket client still holds (after the socket server stopped). */
  close(): Promise<void>;
}

interface Notification {
  channel: string;
  payload: string;
}

/** Follows a backend response message by message, however it is chunked, keeping only what the gate needs. */
class ResponseScanner {
  /** The transaction status, when the response so far ends with a ReadyForQuery. */
  readyStatus: number | undefined;
  readonly notifications: Notification[] = [];
  #header: number[] = [];
  #type = 0;
  #remaining = -1; // body bytes still to come; -1 while reading a header
  #body: Buffer[] | undefined;

  push(data: Uint8Array): void {
    let i = 0;
    while (i < data.length) {
      if (this.#remaining < 0) {
        this.#header.push(data[i++]!);
        if (this.#header.length < 5) continue;
        const [type, a, b, c, d] = this.#header as [number, number, number, number, number];
        this.#header = [];
        this.#type = type;
        this.#remaining = ((a << 24) | (b << 16) | (c << 8) | d) - 4;
        this.#body = type === READY_FOR_QUERY || type === NOTIFICATION ? [] : undefined;
        this.readyStatus = undefined;
        if (this.#remaining === 0) this.#finish();
        continue;
      }
      const n = Math.min(this.#remaining, data.length - i);
      this.#body?.push(Buffer.from(data.subarray(i, i + n)));
      i += n;
      this.#remaining -= n;
      if (this.#remaining === 0) this.#finish();
    }
  }

  #finish(): void {
    const body = this.#body ? Buffer.concat(this.#body) : undefined;
    if (body && this.#type === READY_FOR_QUERY) this.readyStatus = body[0];
    if (body && this.#type === NOTIFICATION) {
      const channelEnd = body.indexOf(0, 4);
      const payloadEnd = body.indexOf(0, channelEnd + 1);
      this.notifications.push({
        channel: body.toString('utf8', 4, channelEnd),
        payload: body.toString('utf8', channelEnd + 1, payloadEnd),
      });
    }
    this.#remaining = -1;
    this.#body = undefined;
  }
}

function queryMessage(sql: string): Uint8Array {
  const text = Buffer.from(`${sql}\0`, 'utf8');
  const msg = Buffer.alloc(5 + text.length);
  msg.write('Q', 0, 'latin1');
  msg.writeInt32BE(4 + text.length, 1);
  text.copy(msg, 5);
  return msg;
}

const SYNC = Uint8Array.from([0x53, 0, 0, 0, 4]);

export function gateSocketSessions(pglite: PGlite): SocketGate {
  /** Set while a socket client holds the session; calling it lets the server's own queries run again. */
  let release: (() => void) | undefined;

  const acquire = () =>
    new Promise<() => void>((acquired) => {
      pglite._runExclusiveTransaction(() => new Promise<void>((done) => acquired(done))).catch(() => {});
    });

  const releaseSession = () => {
    release?.();
    release = undefined;
  };

  /** Ends whatever the holder left open (a statement sequence, a transaction) and releases the session. */
  const abandon = async () => {
    if (!release) return;
    await pglite.runExclusive(async () => {
      await pglite.execProtocolRaw(SYNC);
      await pglite.execProtocolRaw(queryMessage('ROLLBACK'));
    });
    releaseSession();
  };

  const renotify = (notifications: Notification[]) => {
    // Not awaited: it needs the session, which the socket message being answered still holds.
    void Promise.all(
      notifications.map((n) => pglite.query('SELECT pg_notify($1, $2)', [n.channel, n.payload])),
    ).catch(() => {});
  };

  const overrides: Partial<Record<keyof PGlite, unknown>> = {
    // pglite-socket keeps serving the previous client while this is true: exactly while a client holds the session.
    isInTransaction: () => release !== undefined,

    async runExclusive<T>(fn: () => Promise<T>): Promise<T> {
      release ??= await acquire();
      return pglite.runExclusive(fn);
    },

    async execProtocolRawStream(message: Uint8Array, options: RawStreamOptions) {
      const scanner = new ResponseScanner();
      try {
        await pglite.execProtocolRawStream(message, {
          ...options,
          onRawData: (data: Uint8Array) => {
            scanner.push(data);
            options.onRawData(data);
          },
        });
      } finally {
        const idle = scanner.readyStatus === IDLE || (message[0] === TERMINATE && !pglite.isInTransaction());
        if (idle) releaseSession();
        if (scanner.notifications.length) renotify(scanner.notifications);
      }
    },

    // pglite-socket calls this only to roll back the transaction of a client that disconnected.
    async exec(sql: string, options?: Parameters<PGlite['exec']>[1]) {
      if (release && sql.trim().toUpperCase() === 'ROLLBACK') {
        await abandon();
        return [];
      }
      return pglite.exec(sql, options);
    },
  };

  const db = new Proxy(pglite, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof PGlite];
      // PGlite keeps its state in #private fields, so its methods must run with the real instance as `this`.
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { db, close: abandon };
}
