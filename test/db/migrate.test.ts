// The migration runner: applies prisma/migrations once each, records them in _prisma_migrations as
// `prisma migrate deploy` does, rolls a failing migration back whole, refuses to start past a migration Prisma left
// unfinished, and lets several instances start at once against one Postgres.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Database, openPostgres, type SqlConnection } from '../../src/db/database.ts';
import { loadMigrations, type Migration, MigrationError, migrate } from '../../src/db/migrate.ts';
import { MIGRATIONS_DIR } from '../../src/paths.ts';
import {
  createPostgresDatabase,
  DB_KINDS,
  emptyDatabase,
  forEachDatabase,
  type TestDatabase,
} from '../helpers/db.ts';
import { readDatabaseSchema } from '../helpers/schema-drift.ts';
import { type ServerProcess, spawnServer, waitUntilReady } from '../helpers/server-process.ts';

interface MigrationRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

async function migrationRows(db: Database): Promise<MigrationRow[]> {
  return db.withConnection((c) =>
    c.query<MigrationRow>('SELECT * FROM "_prisma_migrations" ORDER BY started_at, migration_name'),
  );
}

async function tableExists(c: SqlConnection, name: string): Promise<boolean> {
  const [r] = await c.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [name]);
  return r!.present;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** A temporary folder of migrations in Prisma's layout: `<dir>/<name>/migration.sql`. */
async function migrationsFolder(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'latchkey-migrations-'));
  for (const [name, sql] of Object.entries(files)) await writeMigration(dir, name, sql);
  return dir;
}

async function writeMigration(dir: string, name: string, sql: string): Promise<void> {
  await mkdir(join(dir, name), { recursive: true });
  await writeFile(join(dir, name, 'migration.sql'), sql);
}

const GOOD = '20991201000000_good';
const BAD = '20991202000000_bad';
const GOOD_SQL = 'CREATE TABLE "good_one" ("id" INTEGER NOT NULL);\nINSERT INTO "good_one" VALUES (42);\n';
// Its first statements succeed and the last fails: all of it must be undone.
const BAD_SQL = `CREATE TABLE "half_done" ("id" INTEGER NOT NULL);
INSERT INTO "half_done" VALUES (1);
ALTER TABLE "users" ADD COLUMN "half_done_flag" BOOLEAN;
SELECT * FROM "no_such_table";
`;
const FIXED_SQL = 'CREATE TABLE "half_done" ("id" INTEGER NOT NULL);\nINSERT INTO "half_done" VALUES (1);\n';

forEachDatabase('migrations', (kind) => {
  // One fresh database serves the whole suite; each test also stands alone (it migrates what it needs).
  let t: TestDatabase;
  let real: Migration[];
  const folders: string[] = [];
  before(async () => {
    t = await emptyDatabase(kind);
    real = await loadMigrations();
    assert.ok(real.length > 0, 'prisma/migrations holds migrations');
  });
  after(async () => {
    await t.cleanup();
    for (const dir of folders) await rm(dir, { recursive: true, force: true });
  });

  it('applies every migration once: a second run applies nothing and leaves one row per migration', async () => {
    const names = real.map((m) => m.name);
    const first = await migrate(t.db);
    assert.deepEqual(first, { applied: names, alreadyApplied: [] });
    const second = await migrate(t.db);
    assert.deepEqual(second, { applied: [], alreadyApplied: names });
    const rows = await migrationRows(t.db);
    assert.deepEqual(
      rows.map((r) => r.migration_name),
      names,
    );
  });

  it('records each migration as prisma migrate deploy does: SHA-256 of migration.sql, finished, one step', async () => {
    await migrate(t.db);
    const rows = await migrationRows(t.db);
    for (const m of real) {
      const file = await readFile(join(MIGRATIONS_DIR, m.name, 'migration.sql'), 'utf8');
      const row = rows.find((r) => r.migration_name === m.name);
      assert.ok(row, `${m.name} is recorded`);
      assert.equal(row.checksum, sha256(file));
      assert.match(row.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.ok(row.finished_at instanceof Date, 'finished_at is set');
      assert.ok(row.started_at instanceof Date, 'started_at is set');
      assert.ok(row.finished_at.getTime() >= row.started_at.getTime(), 'finished after it started');
      assert.equal(row.applied_steps_count, 1);
      assert.equal(row.rolled_back_at, null);
      assert.equal(row.logs, null);
    }
  });

  it('undoes the whole of a failing migration, names it, records nothing, and applies it once fixed', async () => {
    const dir = await migrationsFolder({ [GOOD]: GOOD_SQL });
    folders.push(dir);
    const withGood = [...real, ...(await loadMigrations(dir))];
    await migrate(t.db, { migrations: withGood });
    const schemaBefore = await t.db.withConnection(readDatabaseSchema);
    const rowsBefore = await migrationRows(t.db);

    await writeMigration(dir, BAD, BAD_SQL);
    await assert.rejects(
      migrate(t.db, { migrations: [...real, ...(await loadMigrations(dir))] }),
      (err: unknown) => {
        assert.ok(err instanceof MigrationError, `a MigrationError, got ${String(err)}`);
        assert.equal(err.migration, BAD);
        assert.match(err.message, new RegExp(`migration ${BAD} failed: .*no_such_table`));
        return true;
      },
    );

    assert.deepEqual(await t.db.withConnection(readDatabaseSchema), schemaBefore);
    assert.deepEqual(await migrationRows(t.db), rowsBefore);
    await t.db.withConnection(async (c) => {
      assert.equal(await tableExists(c, 'half_done'), false, 'the first statement was undone');
      assert.deepEqual(
        await c.query('SELECT id FROM "good_one"'),
        [{ id: 42 }],
        'earlier migrations keep data',
      );
    });

    await writeMigration(dir, BAD, FIXED_SQL);
    const result = await migrate(t.db, { migrations: [...real, ...(await loadMigrations(dir))] });
    assert.deepEqual(result.applied, [BAD]);
    const fixedRows = (await migrationRows(t.db)).filter((r) => r.migration_name === BAD);
    assert.equal(fixedRows.length, 1);
    assert.equal(fixedRows[0]!.checksum, sha256(FIXED_SQL));
    await t.db.withConnection(async (c) => {
      assert.deepEqual(await c.query('SELECT id FROM "half_done"'), [{ id: 1 }]);
    });
  });

  it('refuses to migrate past a migration Prisma recorded as started but not finished, naming it', async () => {
    await migrate(t.db);
    const interrupted = '20991231000000_interrupted';
    const dir = await migrationsFolder({
      [interrupted]: 'CREATE TABLE "interrupted_marker" ("id" INTEGER);\n',
      '20991231000001_later': 'CREATE TABLE "later_marker" ("id" INTEGER);\n',
    });
    folders.push(dir);
    const migrations = [...real, ...(await loadMigrations(dir))];
    // What `prisma migrate deploy` leaves behind when a migration fails part-way.
    await t.db.withConnection((c) =>
      c.query(
        `INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, logs, started_at, applied_steps_count)
         VALUES ('00000000-0000-4000-8000-000000000001', $1, NULL, $2, 'Database error: ...', now(), 0)`,
        [migrations.find((m) => m.name === interrupted)!.checksum, interrupted],
      ),
    );
    const rowsBefore = await migrationRows(t.db);

    await assert.rejects(migrate(t.db, { migrations }), (err: unknown) => {
      assert.ok(err instanceof MigrationError, `a MigrationError, got ${String(err)}`);
      assert.equal(err.migration, interrupted);
      assert.match(err.message, new RegExp(`migration ${interrupted} failed: .*started but not finished`));
      return true;
    });
    assert.deepEqual(await migrationRows(t.db), rowsBefore, 'nothing recorded');
    await t.db.withConnection(async (c) => {
      assert.equal(await tableExists(c, 'interrupted_marker'), false);
      assert.equal(await tableExists(c, 'later_marker'), false);
    });

    // `prisma migrate resolve --rolled-back` marks it; the next run applies it again, as Prisma does.
    await t.db.withConnection((c) =>
      c.query('UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = $1', [
        interrupted,
      ]),
    );
    const result = await migrate(t.db, { migrations });
    assert.deepEqual(result.applied, [interrupted, '20991231000001_later']);
    const rows = (await migrationRows(t.db)).filter((r) => r.migration_name === interrupted);
    assert.deepEqual(
      rows.map((r) => [r.finished_at === null, r.rolled_back_at === null]),
      [
        [true, false],
        [false, true],
      ],
    );
  });
});

describe('concurrent start [postgres]', { skip: !DB_KINDS.includes('postgres') }, () => {
  let real: Migration[];
  before(async () => {
    real = await loadMigrations();
  });

  it('applies each migration exactly once when separate connection pools migrate one database at once', async () => {
    const created = await createPostgresDatabase();
    // A slow migration widens the window in which the runners overlap.
    const dir = await migrationsFolder({
      '20991201000000_slow': 'SELECT pg_sleep(0.3);\nCREATE TABLE "slow_marker" ("id" INTEGER);\n',
    });
    const migrations = [...real, ...(await loadMigrations(dir))];
    const names = migrations.map((m) => m.name);
    const dbs = Array.from({ length: 6 }, () => openPostgres({ url: created.url, poolSize: 2 }));
    try {
      const results = await Promise.all(dbs.map((db) => migrate(db, { migrations })));
      for (const name of names) {
        assert.equal(
          results.filter((r) => r.applied.includes(name)).length,
          1,
          `${name} applied by one runner`,
        );
      }
      for (const r of results)
        assert.deepEqual([...r.applied, ...r.alreadyApplied].sort(), [...names].sort());
      const rows = await migrationRows(dbs[0]!);
      assert.deepEqual(rows.map((r) => r.migration_name).sort(), [...names].sort());
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
      await created.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('starts two server processes at once on one fresh database: both get ready, each migration applied once', async () => {
    const created = await createPostgresDatabase();
    const dataDir = await mkdtemp(join(tmpdir(), 'latchkey-data-'));
    const servers: ServerProcess[] = [];
    try {
      for (let i = 0; i < 2; i++)
        servers.push(spawnServer({ env: { DATABASE_URL: created.url, DATA_DIR: dataDir } }));
      await Promise.all(servers.map((s) => waitUntilReady(s)));

      const db = openPostgres({ url: created.url, poolSize: 1 });
      try {
        const rows = await migrationRows(db);
        assert.deepEqual(rows.map((r) => r.migration_name).sort(), real.map((m) => m.name).sort());
        assert.ok(rows.every((r) => r.finished_at !== null));
      } finally {
        await db.close();
      }
      const appliedLines = servers.flatMap((s) => s.logs().filter((l) => l.msg === 'migration applied'));
      assert.deepEqual(appliedLines.map((l) => l.migration).sort(), real.map((m) => m.name).sort());

      const exits = await Promise.all(servers.map((s) => s.stop()));
      assert.deepEqual(exits, [
        { code: 0, signal: null },
        { code: 0, signal: null },
      ]);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
      await created.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
