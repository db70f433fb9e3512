// Fresh, migrated databases for tests: an in-memory PGlite, and a new database on the local Postgres server
// (created per call, dropped afterwards). Storage tests run once per kind via `forEachDatabase`.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { type Database, openPostgres } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { pgliteDatabase } from '../../src/db/pglite.ts';
import { PACKAGE_ROOT } from '../../src/paths.ts';

// A new PGlite runs initdb (seconds of WebAssembly); starting from a saved copy of a fresh one takes a fraction of
// that and gives the same empty cluster. The copy is kept per PGlite version in the temp folder, written under a
// unique name and renamed into place, so test files running at once never read half a file.
const PGLITE_VERSION = (
  JSON.parse(readFileSync(join(PACKAGE_ROOT, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')) as {
    version: string;
  }
).version;
const FRESH_PGLITE = join(tmpdir(), `latchkey-test-pglite-${PGLITE_VERSION}.tar`);

export async function freshPGlite(): Promise<PGlite> {
  const saved = await readFile(FRESH_PGLITE).catch(() => undefined);
  if (saved) return PGlite.create({ loadDataDir: new Blob([saved]) });
  const pglite = await PGlite.create();
  const dump = await pglite.dumpDataDir('none');
  const partial = `${FRESH_PGLITE}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(partial, Buffer.from(await dump.arrayBuffer()));
  await rename(partial, FRESH_PGLITE);
  return pglite;
}

export type DbKind = 'pglite' | 'postgres';

export const DB_KINDS: DbKind[] = (process.env.LATCHKEY_TEST_DB ?? 'pglite,postgres')
  .split(',')
  .map((s) => s.trim())
  .filter((s): s is DbKind => s === 'pglite' || s === 'postgres');

/** The maintenance database on the local server; new test databases are created through it. */
export const POSTGRES_ADMIN_URL =
  process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  kind: DbKind;
  db: Database;
  /** The connection string, for Postgres (undefined for PGlite). */
  url: string | undefined;
  /** Closes the connection and drops the database. */
  cleanup(): Promise<void>;
}

/** Creates an empty database on the local Postgres server and returns its URL and a drop function. */
export async function createPostgresDatabase(): Promise<{
  url: string;
  name: string;
  drop(): Promise<void>;
}> {
  const name = `latchkey_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    name,
    async drop() {
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}

/** An empty (unmigrated) database of the given kind. */
export async function emptyDatabase(kind: DbKind): Promise<TestDatabase> {
  if (kind === 'pglite') {
    const pglite = await freshPGlite();
    const db = pgliteDatabase(pglite);
    return { kind, db, url: undefined, cleanup: () => db.close() };
  }
  const created = await createPostgresDatabase();
  const db = openPostgres({ url: created.url, poolSize: 20 });
  return {
    kind,
    db,
    url: created.url,
    async cleanup() {
      await db.close();
      await created.drop();
    },
  };
}

/** A fresh database of the given kind with every migration applied. */
export async function migratedDatabase(kind: DbKind): Promise<TestDatabase> {
  const t = await emptyDatabase(kind);
  await migrate(t.db);
  return t;
}

/** Declares the suite once per database kind: `forEachDatabase('tokens', (kind) => { ... })`. */
/**
 * A migrated database of `kind` for a test that cuts the connection: on Postgres, a database of its own reached through
 * `proxy` (a TcpProxy in front of the shared server, which is never touched), opened here; `drop` removes it once the
 * test has closed everything. PGlite has no connection to cut, so it is a plain migrated database.
 */
export async function databaseThroughProxy(
  kind: DbKind,
  proxy: { open(): Promise<void>; port: number },
): Promise<{ database: TestDatabase; drop: () => Promise<void> }> {
  if (kind === 'pglite') return { database: await migratedDatabase(kind), drop: async () => {} };
  const created = await createPostgresDatabase();
  await proxy.open();
  const through = new URL(created.url);
  through.port = String(proxy.port);
  const db = openPostgres({ url: through.href, poolSize: 4 });
  await migrate(db);
  return { database: { kind, db, url: through.href, cleanup: () => db.close() }, drop: created.drop };
}

export function forEachDatabase(name: string, fn: (kind: DbKind) => void): void {
  for (const kind of DB_KINDS) {
    describe(`${name} [${kind}]`, () => fn(kind));
  }
}
