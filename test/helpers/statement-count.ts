// Counts the SQL statements this process sends to its databases, at the drivers (pg's Client#query, which the pool
// and @prisma/adapter-pg use; PGlite#query, which pglite-prisma-adapter uses), so a test can prove how many round
// trips a request costs. Every client in the process is counted while it runs: use it around quiet requests only.
// Two kinds of upkeep run on their own timers, never on a request's path, and are left out: an instance's heartbeat
// (the `instances` table, src/changes.ts) and the batched writes of client traces (`client_traces`, src/trace/).
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

export interface SentStatement {
  text: string;
  /** The prepared statement's name, when the driver was given one. */
  name: string | undefined;
}

export interface StatementLog {
  readonly sent: SentStatement[];
  stop(): void;
}

type QueryFn = (this: unknown, ...args: unknown[]) => unknown;

function ownerOf(proto: object, method: string): Record<string, QueryFn> {
  let p: object | null = proto;
  while (p && !Object.hasOwn(p, method)) p = Object.getPrototypeOf(p) as object | null;
  if (!p) throw new Error(`no ${method} on the prototype chain`);
  return p as Record<string, QueryFn>;
}

function describe(first: unknown): SentStatement {
  if (typeof first === 'string') return { text: first, name: undefined };
  const config = first as { text?: string; name?: string };
  return { text: config.text ?? '', name: config.name };
}

const UPKEEP = /"?(instances|client_traces)"?\s/i;
const BEGIN = /^\s*BEGIN\b/i;
const TRANSACTION_END = /^\s*(COMMIT|ROLLBACK)\b/i;

/** Starts recording; `stop()` puts the drivers back. */
export function recordStatements(): StatementLog {
  const sent: SentStatement[] = [];
  // Per connection: a BEGIN not yet followed by anything, and connections inside an upkeep transaction.
  const pendingBegin = new WeakMap<object, SentStatement>();
  const inUpkeep = new WeakSet<object>();
  const owners = [ownerOf(pg.Client.prototype, 'query'), ownerOf(PGlite.prototype, 'query')];
  const originals = owners.map((o) => o.query!);
  owners.forEach((owner, i) => {
    const original = originals[i]!;
    owner.query = function (this: unknown, ...args: unknown[]) {
      const statement = describe(args[0]);
      const client = this as object;
      if (UPKEEP.test(statement.text)) {
        // The trace writer wraps its statements in a transaction: its BEGIN, sent on this connection just before,
        // and the COMMIT or ROLLBACK that ends it are upkeep too.
        const begin = pendingBegin.get(client);
        if (begin !== undefined) {
          const at = sent.indexOf(begin);
          if (at >= 0) sent.splice(at, 1);
          pendingBegin.delete(client);
          inUpkeep.add(client);
        }
      } else if (inUpkeep.has(client) && TRANSACTION_END.test(statement.text)) {
        inUpkeep.delete(client);
      } else if (!inUpkeep.has(client)) {
        if (BEGIN.test(statement.text)) pendingBegin.set(client, statement);
        else pendingBegin.delete(client);
        sent.push(statement);
      }
      return original.apply(this, args);
    };
  });
  return {
    sent,
    stop() {
      owners.forEach((owner, i) => {
        owner.query = originals[i]!;
      });
    },
  };
}
