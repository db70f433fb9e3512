// The embedded database's first start (README: Start): it says, through the logger, that it is initialising the data
// directory, and loads the migrated template `npm run build` saved (src/db/template.ts) instead of running initdb and
// every migration. A template made before newer migrations still ends up exactly as the migrations describe, because
// the start applies the rest; later starts say nothing about initialising.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { openEmbedded } from '../../src/db/embedded.ts';
import { loadMigrations, migrate } from '../../src/db/migrate.ts';
import { buildTemplate, templatePath } from '../../src/db/template.ts';
import { findSchemaDrift } from '../helpers/schema-drift.ts';
import { spawnServer, tempDir, waitUntilReady } from '../helpers/server-process.ts';

/** A pino logger whose lines land in `lines` (parsed). */
function capturingLogger(lines: Record<string, unknown>[]) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return pino({ level: 'info' }, sink);
}

const FIRST_START = /^initialising embedded database in .* \(first start\)…$/;

describe('embedded first start from a template', () => {
  let dir: { path: string; remove(): Promise<void> };
  let templateDir: { path: string; remove(): Promise<void> };
  before(async () => {
    dir = await tempDir('latchkey-embedded-start-');
    templateDir = await tempDir('latchkey-template-');
  });
  after(async () => {
    await dir.remove();
    await templateDir.remove();
  });

  it('says it initialises the data directory, loads the template, and the start applies newer migrations', async () => {
    const migrations = await loadMigrations();
    const newest = migrations.at(-1)!;
    // A template made before the newest migration existed.
    const template = `${templateDir.path}/older.tar.gz`;
    await buildTemplate(template, migrations.slice(0, -1));

    const lines: Record<string, unknown>[] = [];
    const db = await openEmbedded({ dataDir: dir.path, logger: capturingLogger(lines), template });
    try {
      const first = lines.find((l) => FIRST_START.test(String(l.msg)));
      assert.ok(first, `the first-start line, in ${JSON.stringify(lines)}`);
      assert.ok(String(first.msg).includes(dir.path));
      assert.equal(first.template, template);
      const result = await migrate(db);
      assert.deepEqual(result.applied, [newest.name], 'only what the template lacked is applied');
      assert.equal(result.alreadyApplied.length, migrations.length - 1);
      assert.deepEqual(await db.withConnection((c) => findSchemaDrift(c)), []);
    } finally {
      await db.close();
    }

    // A later start finds the cluster: no first-start line, nothing to apply, the same schema.
    const again: Record<string, unknown>[] = [];
    const reopened = await openEmbedded({ dataDir: dir.path, logger: capturingLogger(again), template });
    try {
      assert.equal(again.filter((l) => FIRST_START.test(String(l.msg))).length, 0);
      assert.deepEqual((await migrate(reopened)).applied, []);
      assert.deepEqual(await reopened.withConnection((c) => findSchemaDrift(c)), []);
    } finally {
      await reopened.close();
    }
  });
});

describe('embedded first start of the server', () => {
  let data: { path: string; remove(): Promise<void> };
  before(async () => {
    data = await tempDir('latchkey-embedded-server-');
  });
  after(() => data.remove());

  it('logs the first-start line once, loads the template npm run build saved, and is ready', async () => {
    const server = spawnServer({ env: { DATA_DIR: data.path } });
    try {
      await waitUntilReady(server);
      const first = server.logs().find((l) => FIRST_START.test(String(l.msg)));
      assert.ok(first, server.stdout());
      assert.equal(first.template, templatePath(), 'the template from the build (scripts/prepare.mjs)');
      const migrated = server.logs().find((l) => l.msg === 'database migrated');
      assert.equal(migrated?.applied, 0, 'the template had every migration');
    } finally {
      assert.equal((await server.stop()).code, 0);
    }
    const later = spawnServer({ env: { DATA_DIR: data.path } });
    try {
      await waitUntilReady(later);
      assert.equal(later.logs().filter((l) => FIRST_START.test(String(l.msg))).length, 0);
    } finally {
      assert.equal((await later.stop()).code, 0);
    }
  });
});
