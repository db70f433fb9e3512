// Applies prisma/migrations (Prisma Migrate's folder format) and records them in `_prisma_migrations` exactly as
// `prisma migrate deploy` does, so either tool sees the other's work. Each migration runs in its own transaction:
// a failure leaves the database as it was and names the migration. A session advisory lock (the key Prisma Migrate
// itself uses) makes concurrent starts apply each migration exactly once.
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MIGRATIONS_DIR } from '../paths.ts';
import type { Database, SqlConnection } from './database.ts';

/** Prisma Migrate's advisory lock key (so `prisma migrate deploy` and Latchkey never run at once). */
export const MIGRATION_LOCK_KEY = 72707369;

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationResult {
  applied: string[];
  alreadyApplied: string[];
}

export class MigrationError extends Error {
  constructor(
    readonly migration: string,
    cause: unknown,
  ) {
    super(`migration ${migration} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.name = 'MigrationError';
  }
}

const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

/** Reads every `<name>/migration.sql` under `dir`, in name order (Prisma's timestamp prefixes sort by time). */
export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const migrations: Migration[] = [];
  for (const name of names) {
    const sql = await readFile(join(dir, name, 'migration.sql'), 'utf8');
    // Prisma's checksum is the SHA-256 of the file's bytes, hex-encoded.
    migrations.push({ name, sql, checksum: createHash('sha256').update(sql, 'utf8').digest('hex') });
  }
  return migrations;
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

export interface MigrateOptions {
  migrations?: Migration[];
  onApplied?: (name: string) => void;
  onChecksumMismatch?: (name: string) => void;
}

export async function migrate(db: Database, options: MigrateOptions = {}): Promise<MigrationResult> {
  const migrations = options.migrations ?? (await loadMigrations());
  return db.withConnection(async (c) => {
    await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      return await applyPending(c, migrations, options);
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  });
}

async function applyPending(
  c: SqlConnection,
  migrations: Migration[],
  options: MigrateOptions,
): Promise<MigrationResult> {
  await c.exec(CREATE_MIGRATIONS_TABLE);
  const rows = await c.query<AppliedRow>(
    'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations" ORDER BY started_at',
  );
  const failed = rows.find((r) => r.finished_at === null && r.rolled_back_at === null);
  if (failed) {
    throw new MigrationError(
      failed.migration_name,
      new Error(
        'it is recorded as started but not finished; resolve it (prisma migrate resolve) before starting',
      ),
    );
  }
  const applied = new Map(rows.filter((r) => r.finished_at !== null).map((r) => [r.migration_name, r]));
  const result: MigrationResult = { applied: [], alreadyApplied: [] };

  for (const m of migrations) {
    const row = applied.get(m.name);
    if (row) {
      if (row.checksum !== m.checksum) options.onChecksumMismatch?.(m.name);
      result.alreadyApplied.push(m.name);
      continue;
    }
    await c.exec('BEGIN');
    try {
      // The database's clock for both ends (now() would be the transaction's start, before started_at).
      const [{ started_at: startedAt }] = (await c.query<{ started_at: Date }>(
        'SELECT clock_timestamp() AS started_at',
      )) as [{ started_at: Date }];
      await c.exec(m.sql);
      await c.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, started_at, applied_steps_count)
         VALUES ($1, $2, clock_timestamp(), $3, NULL, $4, 1)`,
        [randomUUID(), m.checksum, m.name, startedAt],
      );
      await c.exec('COMMIT');
    } catch (err) {
      await c.exec('ROLLBACK').catch(() => {});
      throw new MigrationError(m.name, err);
    }
    result.applied.push(m.name);
    options.onApplied?.(m.name);
  }
  return result;
}
