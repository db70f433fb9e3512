// A migrated database of either kind plus a second Prisma client and raw query on it that report every statement they
// send (Prisma's `query` log events: one per statement; an interactive transaction shows as its statements and its
// COMMIT (or ROLLBACK), its BEGIN is not reported; the raw query's statements as sent), for tests that count round
// trips.
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { openPostgres, type RawQuery, type StoreDatabase } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { pgliteDatabase } from '../../src/db/pglite.ts';
import { PrismaClient } from '../../src/generated/prisma/client.ts';
import { type DbKind, freshPGlite, migratedDatabase, type TestDatabase } from './db.ts';

export interface CountedDatabase {
  /** The plain database, for setting up and checking rows. */
  database: TestDatabase;
  /** A client whose statements are recorded in `statements`. */
  prisma: PrismaClient;
  /** That client with a raw query whose statements are recorded too, for the stores. */
  db: StoreDatabase;
  statements: string[];
  cleanup(): Promise<void>;
}

/** A client on `adapter` that pushes the text of each statement it sends onto `statements`. */
function recording(adapter: PrismaPg | PrismaPGlite, statements: string[]): PrismaClient {
  const prisma = new PrismaClient({ adapter, log: [{ emit: 'event', level: 'query' }] });
  prisma.$on('query', (e) => statements.push(e.query));
  // The log option only widens $on's event types; the client is otherwise the one the stores take.
  return prisma as unknown as PrismaClient;
}

/**
 * `timeZone` sets the Postgres session's TimeZone of the counted client (Postgres only), to show timestamps do not
 * depend on it.
 */
export async function countedDatabase(kind: DbKind, timeZone?: string): Promise<CountedDatabase> {
  let database: TestDatabase;
  let prisma: PrismaClient;
  let raw: RawQuery;
  let closeRaw = async () => {};
  const statements: string[] = [];
  if (kind === 'pglite') {
    const pglite = await freshPGlite();
    const db = pgliteDatabase(pglite);
    await migrate(db);
    database = { kind, db, url: undefined, cleanup: () => db.close() };
    prisma = recording(new PrismaPGlite(pglite), statements);
    raw = db.raw;
  } else {
    database = await migratedDatabase(kind);
    const url = new URL(database.url as string);
    if (timeZone) url.searchParams.set('options', `-c TimeZone=${timeZone}`);
    prisma = recording(new PrismaPg({ connectionString: url.href }), statements);
    const rawDb = openPostgres({ url: url.href, poolSize: 4 });
    raw = rawDb.raw;
    closeRaw = () => rawDb.close();
  }
  const recordedRaw: RawQuery = (statement) => {
    statements.push(statement.text);
    return raw(statement);
  };
  return {
    database,
    prisma,
    db: { prisma, raw: recordedRaw },
    statements,
    async cleanup() {
      await prisma.$disconnect();
      await closeRaw();
      await database.cleanup();
    },
  };
}
