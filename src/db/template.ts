// The embedded database's data-directory template (README: Start): an empty PGlite cluster with every migration
// applied, saved by `npm run build` (scripts/prepare.mjs) as a gzip tarball in dist/. An embedded first start loads it
// instead of running initdb (seconds of WebAssembly) and every migration; migrations added after the template was
// made are applied at start as usual. The file is per PGlite version: another version's cluster is not loaded.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { MIGRATIONS_DIR, PACKAGE_ROOT } from '../paths.ts';
import { type Migration, migrate } from './migrate.ts';
import { pgliteDatabase } from './pglite.ts';

/** The installed PGlite's version, from its package.json (found next to its entry point). */
export function pgliteVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.resolve('@electric-sql/pglite')));
  for (let i = 0; i < 4; i++, dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === '@electric-sql/pglite' && pkg.version) return pkg.version;
    } catch {
      // not this directory
    }
  }
  throw new Error('cannot find the version of @electric-sql/pglite');
}

/** Where `npm run build` saves the template, and where an embedded first start looks for it. */
export function templatePath(): string {
  return join(PACKAGE_ROOT, 'dist', `pgdata-template-${pgliteVersion()}.tar.gz`);
}

/** Makes a migrated, empty cluster and saves it to `out` (written aside and renamed, so a reader never sees half). */
export async function buildTemplate(out: string, migrations?: Migration[]): Promise<void> {
  const pglite = await PGlite.create();
  const db = pgliteDatabase(pglite);
  try {
    await migrate(db, migrations ? { migrations } : {});
    const dump = await pglite.dumpDataDir('gzip');
    const partial = `${out}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeFile(partial, Buffer.from(await dump.arrayBuffer()));
    await rename(partial, out);
  } finally {
    await db.close();
  }
}

/** Builds the template unless one newer than every migration is already there. Returns whether it built one. */
export async function ensureTemplate(out = templatePath()): Promise<boolean> {
  const built = await stat(out).catch(() => undefined);
  if (built) {
    const dirs = await readdir(MIGRATIONS_DIR, { withFileTypes: true });
    const times = await Promise.all(
      dirs
        .filter((d) => d.isDirectory())
        .map((d) => stat(join(MIGRATIONS_DIR, d.name, 'migration.sql')).then((s) => s.mtimeMs)),
    );
    if (times.every((t) => t <= built.mtimeMs)) return false;
  }
  await buildTemplate(out);
  return true;
}
