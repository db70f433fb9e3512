// Row counts of every table Latchkey owns, to show a refused request changed nothing.
import type { TestDatabase } from './db.ts';

export type RowCounts = Record<string, number>;

/** Every table in the public schema (but the migrations ledger) and its row count. */
export async function rowCounts(database: TestDatabase, except: readonly string[] = []): Promise<RowCounts> {
  const tables = await database.db.prisma.$queryRaw<{ name: string }[]>`
    SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> '_prisma_migrations'
    ORDER BY table_name`;
  const counts: RowCounts = {};
  for (const { name } of tables) {
    if (except.includes(name)) continue;
    const rows = await database.db.prisma.$queryRawUnsafe<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM "${name}"`,
    );
    counts[name] = rows[0]!.n;
  }
  return counts;
}
