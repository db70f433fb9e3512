// The one way the process reaches its database: Postgres through @prisma/adapter-pg when DATABASE_URL is set,
// otherwise embedded PGlite under DATA_DIR (see embedded.ts for how a second process is kept out).

import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import type { Logger } from 'pino';
import { type Prisma, PrismaClient } from '../generated/prisma/client.ts';
import { NotificationHub } from './notifications.ts';
import { statementNamer } from './statement-names.ts';

/** A single connection for raw SQL: migrations and advisory locks. */
export interface SqlConnection {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Runs a multi-statement script (no parameters). */
  exec(script: string): Promise<void>;
}

/** One statement as `Prisma.sql` builds it: `text` with $1, $2… placeholders, and its `values`. */
export type Statement = Pick<Prisma.Sql, 'text' | 'values'>;

/**
 * Runs one statement straight through the driver, not through Prisma's query engine, and returns its rows as objects
 * by column name: for the few raw statements on the hot paths (store/introspection.ts, store/token-statements.ts),
 * where Prisma's `$queryRaw` costs about as much of the process's CPU as the rest of the request (measured on a batch
 * of 8 introspected tokens: 370–470 µs of CPU a statement through `$queryRaw`, 200–213 µs through pg). Values are
 * read as the driver parses them (text[] → string[], jsonb → parsed JSON, boolean), except `timestamp` columns, read
 * as UTC like Prisma reads them.
 */
export type RawQuery = <R>(statement: Statement) => Promise<R[]>;

/** What the stores need of a database: Prisma, and the driver's own query for the hot paths' raw statements. */
export interface StoreDatabase {
  readonly prisma: PrismaClient;
  readonly raw: RawQuery;
}

export interface Database extends StoreDatabase {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` on one dedicated connection, released afterwards. */
  withConnection<T>(fn: (c: SqlConnection) => Promise<T>): Promise<T>;
  /**
   * Subscribes to a NOTIFY channel. `onState(false)` when the subscription is lost (messages may have been
   * missed), `onState(true)` once it is listening again. Returns the unsubscribe function.
   */
  listen(
    channel: string,
    onMessage: (payload: string) => void,
    onState: (listening: boolean) => void,
  ): Promise<() => Promise<void>>;
  /** Resolves when the database answers a trivial query within `timeoutMs`; rejects otherwise. */
  ping(timeoutMs?: number): Promise<void>;
  /** The connection pool's state, for metrics; absent where there is no pool (the embedded database). */
  poolStats?(): { total: number; idle: number; waiting: number; max: number };
  close(): Promise<void>;
}

export interface PostgresOptions {
  url: string;
  logger?: Logger | undefined;
  /** The pool's most connections (DATABASE_POOL_SIZE). */
  poolSize?: number;
  /**
   * Named prepared statements (statement-names.ts); default on. Off for a running server's embedded PGlite reached
   * through its socket: every connection there shares the one PGlite session, so a statement an earlier connection
   * prepared still exists and preparing it again fails ("prepared statement … already exists").
   */
  prepared?: boolean;
}

/** The type OID of `timestamp` (without time zone), which every timestamp column of the schema has. */
export const TIMESTAMP_OID = 1114;

/**
 * A `timestamp` as Postgres prints it ("2026-12-01 16:08:43.123"), read as UTC: the stores write UTC instants (as
 * Prisma does), and the drivers' own parsers would read it in the process's local time zone.
 */
export function parseUtcTimestamp(text: string): Date {
  return new Date(`${text.replace(' ', 'T')}Z`);
}

type StatementNameGenerator = NonNullable<
  ConstructorParameters<typeof PrismaPg>[1]
>['statementNameGenerator'];

export function openPostgres({ url, logger, poolSize = 10, prepared = true }: PostgresOptions): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    // Kept short so a readiness probe fails fast instead of hanging on a dead socket.
    query_timeout: 30_000,
  });
  // An idle client whose connection dies emits here; without a listener the process would crash.
  pool.on('error', (err) => logger?.warn({ err: { message: err.message } }, 'database connection lost'));
  // pg-pool takes its listener off a client while the client is in use, and pg emits 'error' on a client whose
  // connection ends unexpectedly: a query, transaction or readiness probe under way when the database goes away
  // would crash the process. The work under way already fails with that error, so this listener only stops the crash.
  pool.on('connect', (client) => client.on('error', () => {}));
  // Prepared once per connection, then only executed (statement-names.ts). The adapter's type says the generator
  // returns a string; past its bound ours returns undefined, which pg runs as an unnamed statement. `raw` names its
  // statements with the same generator, so the bound holds for both, and one text is prepared once per connection.
  const nameOf = prepared ? statementNamer() : undefined;
  const adapter = new PrismaPg(
    pool,
    nameOf ? { statementNameGenerator: nameOf as StatementNameGenerator } : {},
  );
  const rawTypes: pg.CustomTypesConfig = {
    getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
      oid === TIMESTAMP_OID && format !== 'binary'
        ? parseUtcTimestamp
        : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
  };
  const prisma = new PrismaClient({ adapter });
  let notifications: NotificationHub | undefined;
  let closed = false;

  return {
    kind: 'postgres',
    prisma,
    async raw<R>({ text, values }: Statement): Promise<R[]> {
      const r = await pool.query({ name: nameOf?.({ sql: text }), text, values, types: rawTypes });
      return r.rows as R[];
    },
    poolStats: () => ({
      total: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
      max: pool.options.max,
    }),
    async withConnection(fn) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        return await fn({
          async query(sql, params) {
            const r = await client.query(sql, params as unknown[] | undefined);
            return r.rows;
          },
          async exec(script) {
            await client.query(script);
          },
        });
      } catch (err) {
        broken = err as Error;
        throw err;
      } finally {
        // A connection that failed mid-transaction or holds session state is not reused.
        client.release(broken);
      }
    },
    listen(channel, onMessage, onState) {
      // LISTEN belongs to one session for as long as it lives: a dedicated connection (not from the pool), one for
      // every channel of this handle (notifications.ts).
      notifications ??= new NotificationHub(url, logger);
      return notifications.subscribe(channel, onMessage, onState);
    },
    async ping(timeoutMs = 2000) {
      const connecting = pool.connect();
      const client = await withTimeout(connecting, timeoutMs, 'database did not accept a connection').catch(
        (err: unknown) => {
          // A connection that arrives after the deadline goes back to the pool instead of being held forever.
          connecting.then(
            (late) => late.release(),
            () => {},
          );
          throw err;
        },
      );
      try {
        await withTimeout(client.query('SELECT 1'), timeoutMs, 'database did not answer');
        client.release();
      } catch (err) {
        client.release(err as Error);
        throw err;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await notifications?.close();
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
