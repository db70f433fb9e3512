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
import type { PGlite } from '@electric-sql/pglite';

const READY_FOR_QUERY = 0x5a; // 'Z', followed by length 5 and the transaction status
const IDLE = 0x49; // 'I': not in a transaction block
const TERMINATE = 0x58; // 'X'

type RawStreamOptions = Parameters<PGlite['execProtocolRawStream']>[1];

export interface SocketGate {
  /** The PGlite instance to hand to PGLiteSocketServer. */
  readonly db: PGlite;
  /** Rolls back and releases a session a socket client still holds (after the socket server stopped). */
  close(): Promise<void>;
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
  /** The transaction status of the last ReadyForQuery in the last message's response, if it ended with one. */
  let lastStatus: number | undefined;

  const acquire = () =>
    new Promise<() => void>((acquired) => {
      pglite._runExclusiveTransaction(() => new Promise<void>((done) => acquired(done))).catch(() => {});
    });

  const releaseIfIdle = (message: Uint8Array) => {
    const idle = lastStatus === IDLE || (message[0] === TERMINATE && !pglite.isInTransaction());
    if (idle && release) {
      release();
      release = undefined;
    }
  };

  /** Ends whatever the holder left open (a statement sequence, a transaction) and releases the session. */
  const abandon = async () => {
    if (!release) return;
    await pglite.runExclusive(async () => {
      await pglite.execProtocolRaw(SYNC);
      await pglite.execProtocolRaw(queryMessage('ROLLBACK'));
    });
    release();
    release = undefined;
  };

  const overrides: Partial<Record<keyof PGlite, unknown>> = {
    // pglite-socket keeps serving the previous client while this is true: exactly while a client holds the session.
    isInTransaction: () => release !== undefined,

    async runExclusive<T>(fn: () => Promise<T>): Promise<T> {
      release ??= await acquire();
      return pglite.runExclusive(fn);
    },

    async execProtocolRawStream(message: Uint8Array, options: RawStreamOptions) {
      const tail: number[] = [];
      lastStatus = undefined;
      try {
        await pglite.execProtocolRawStream(message, {
          ...options,
          onRawData: (data: Uint8Array) => {
            for (const byte of data.subarray(Math.max(0, data.length - 6))) tail.push(byte);
            tail.splice(0, Math.max(0, tail.length - 6));
            options.onRawData(data);
          },
        });
      } finally {
        if (tail.length === 6 && tail[0] === READY_FOR_QUERY && tail[1] === 0 && tail[4] === 5) {
          lastStatus = tail[5];
        }
        releaseIfIdle(message);
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
