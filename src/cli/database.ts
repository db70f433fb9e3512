// How the CLI reaches the database, in the order that keeps the embedded one safe (README: CLI):
// 1. DATABASE_URL set → that Postgres server;
// 2. a server is serving DATA_DIR's socket → through it, so the running server stays the only opener;
// 3. otherwise the directory itself, under its lock (a live holder → DataDirInUseError, never a second opener).
import { resolve } from 'node:path';
import type { Config } from '../config.ts';
import { type Database, openPostgres } from '../db/database.ts';
import { openEmbedded, SOCKET_PORT, socketAvailable } from '../db/embedded.ts';
import { loadMigrations, migrate } from '../db/migrate.ts';
import { describeUrl } from '../db/where.ts';
import { CliError } from './command.ts';

export type DatabaseRoute = 'postgres' | 'socket' | 'direct';

export interface CliDatabase {
  readonly db: Database;
  readonly route: DatabaseRoute;
  /** Where the data is, for messages: never includes a password. */
  readonly where: string;
}

/** A Database over a running server's embedded PGlite, reached through DATA_DIR/.s.PGSQL.5432. */
export function openSocketClient(dataDir: string): Database {
  const url = new URL(`postgresql://postgres@localhost:${SOCKET_PORT}/postgres`);
  // pg treats a host that is a directory as the place of a Unix socket named .s.PGSQL.<port>.
  url.searchParams.set('host', resolve(dataDir));
  // One connection: the socket serves one session at a time, and a second connection waiting on the first while it
  // holds a transaction would wait forever. No named statements: the session outlives this connection.
  const db = openPostgres({ url: url.href, poolSize: 1, prepared: false });
  return { ...db, kind: 'pglite' };
}

export async function openCliDatabase(
  config: Config,
  /** Says what a first open of an embedded directory does (it can take seconds). */
  say: (line: string) => void = () => {},
): Promise<CliDatabase> {
  if (config.databaseUrl) {
    return {
      db: openPostgres({ url: config.databaseUrl, poolSize: 2 }),
      route: 'postgres',
      where: describeUrl(config.databaseUrl),
    };
  }
  const dir = resolve(config.dataDir);
  if (await socketAvailable(dir)) {
    const db = openSocketClient(dir);
    try {
      await db.ping(5000);
      return { db, route: 'socket', where: `the running server's embedded database in ${dir}` };
    } catch {
      // A socket file left by a server that died answers nothing. Opening the directory below either takes over
      // the dead server's lock or, if a live process holds it, fails with DataDirInUseError.
      await db.close().catch(() => {});
    }
  }
  return {
    db: await openEmbedded({
      dataDir: dir,
      logger: { info: (_fields: object, line?: string) => say(line ?? '') },
    }),
    route: 'direct',
    where: `the embedded database in ${dir}`,
  };
}

/**
 * Makes sure the schema is current before a command uses it. An embedded directory opened directly is nobody
 * else's: it is brought up to date, as the server would at start. A server's database (socket or Postgres) with
 * pending migrations is an error that says to run `latchkey migrate`.
 */
export async function ensureMigrated(opened: CliDatabase, onApplied: (name: string) => void): Promise<void> {
  if (opened.route === 'direct') {
    await migrate(opened.db, { onApplied });
    return;
  }
  const pending = await pendingMigrations(opened.db);
  if (pending.length > 0) {
    throw new CliError(
      `the database (${opened.where}) lacks ${pending.length} migration(s): ${pending.join(', ')}. ` +
        `Run 'latchkey migrate' first.`,
    );
  }
}

/** Names of migrations in prisma/migrations that the database has not applied. */
export async function pendingMigrations(db: Database): Promise<string[]> {
  const all = await loadMigrations();
  const applied = await db.withConnection(async (c) => {
    const [table] = await c.query<{ present: boolean }>(
      `SELECT to_regclass('public._prisma_migrations') IS NOT NULL AS present`,
    );
    if (!table?.present) return new Set<string>();
    const rows = await c.query<{ migration_name: string }>(
      'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
    );
    return new Set(rows.map((r) => r.migration_name));
  });
  return all.map((m) => m.name).filter((name) => !applied.has(name));
}
