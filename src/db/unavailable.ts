// Which errors mean "the database cannot be reached right now" (answered 503 temporarily_unavailable with
// Retry-After, RFC 6749 §5.2 and RFC 9110 §15.6.4) rather than "this code is wrong" (500 server_error). Only what
// names the connection itself counts: a constraint violation, a missing table, a bad query or a bug stays a 500.
// Measured (Postgres stopped with `pg_ctl stop -m immediate`, Prisma 7 over @prisma/adapter-pg): a query under way
// fails with pg's plain `Connection terminated unexpectedly`; later ones with Prisma P1001 (model queries and
// transactions) or P2010 (raw queries) whose driver adapter error has the kind `DatabaseNotReachable`.

/** Seconds a client is asked to wait before trying again while the database is unavailable. */
export const DATABASE_RETRY_AFTER = 5;

// Prisma's codes for an unreachable server, a connection it closed, timeouts, and a full connection pool.
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2037']);

// @prisma/driver-adapter-utils error kinds that name the connection (adapter-pg maps socket errors to them).
const ADAPTER_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
]);

// SQLSTATE: class 08 is connection exceptions; 57P01-57P03 the server shutting down, crashed or starting;
// 53300 too many connections (PostgreSQL Appendix A).
const SQLSTATE = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/;

// Node socket errors on the way to the server.
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

// node-postgres (pg, pg-pool) errors that carry no code, matched on their exact wording; PGlite once closed.
const MESSAGES = [
  /^Connection terminated unexpectedly$/,
  /^Connection terminated$/,
  /^Connection terminated due to connection timeout$/,
  /^timeout exceeded when trying to connect$/,
  /^Client has encountered a connection error and is not queryable$/,
  /^Cannot use a pool after calling end on the pool$/,
  /^Query read timeout$/,
  /^PGlite is closed$/,
];

// Prisma's interactive-transaction manager: no connection to start one on in time (the pool is starved), or a
// transaction that outlived its timeout because the database stopped answering (no handler waits on anything else
// inside a transaction).
const TRANSACTION_STALLED =
  /Unable to start a transaction in the given time|cannot be executed on an expired transaction/;

interface Inspectable {
  code?: unknown;
  message?: unknown;
  syscall?: unknown;
  kind?: unknown;
  meta?: { driverAdapterError?: { cause?: { kind?: unknown; code?: unknown } } };
  cause?: unknown;
}

function namesConnection(e: Inspectable): boolean {
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : '';
  if (code && PRISMA_CODES.has(code)) return true;
  if (code === 'P2028' && TRANSACTION_STALLED.test(message)) return true;
  const adapter = e.meta?.driverAdapterError?.cause;
  if (adapter && typeof adapter.kind === 'string') {
    if (ADAPTER_KINDS.has(adapter.kind)) return true;
    if (adapter.kind === 'postgres' && typeof adapter.code === 'string' && SQLSTATE.test(adapter.code))
      return true;
  }
  if (typeof e.kind === 'string' && ADAPTER_KINDS.has(e.kind)) return true;
  if (code && SQLSTATE.test(code) && !/^P\d{4}$/.test(code)) return true;
  if (code && SOCKET_CODES.has(code) && typeof e.syscall === 'string') return true;
  return MESSAGES.some((m) => m.test(message));
}

/** Whether `err` (or an error it wraps) says the database cannot be reached, as opposed to any other failure. */
export function isDatabaseUnavailable(err: unknown): boolean {
  let current: unknown = err;
  // Bounded: a cause chain is short, and a cycle must not hang the error handler.
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    if (namesConnection(current as Inspectable)) return true;
    current = (current as Inspectable).cause;
  }
  return false;
}
