// Named prepared statements for Postgres: @prisma/adapter-pg passes a statement's name to pg, which parses it once
// per connection and afterwards only binds and executes it (PostgreSQL: PREPARE; protocol "extended query").
// Prisma's SQL text is the same for every call of one query shape, so the name is a digest of the text. The number of
// names is bounded: past MAX_NAMED distinct texts (shapes that vary, e.g. IN lists of many lengths), statements run
// unnamed as before, so no connection holds an unbounded set of prepared statements.
// PGlite runs in-process and has no such option (src/db/pglite.ts).
import { hash } from 'node:crypto';

const MAX_NAMED = 1000;

export function statementNamer(maxNamed = MAX_NAMED): (query: { sql: string }) => string | undefined {
  const names = new Map<string, string>();
  return ({ sql }) => {
    const known = names.get(sql);
    if (known !== undefined || names.size >= maxNamed) return known;
    const name = `lk_${hash('sha256', sql, 'hex').slice(0, 32)}`;
    names.set(sql, name);
    return name;
  };
}
