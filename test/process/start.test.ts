// Acceptance 1 (issue 2): `npm start` on a fresh checkout serves, keeps its data under DATA_DIR (default ./data)
// across restarts, and answers /healthz and /readyz.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openEmbedded } from '../../src/db/embedded.ts';
import { userStore } from '../../src/store/users.ts';
import { runCli, spawnServer, statusOf, tempDir } from '../helpers/server-process.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

async function newDir(): Promise<string> {
  const dir = await tempDir('latchkey-start-');
  cleanups.push(dir.remove);
  return dir.path;
}

describe('starting the server (node dist/main.js)', () => {
  it('serves /healthz and /readyz on a fresh DATA_DIR, keeps its data there, and still has it after a restart', async () => {
    const dataDir = join(await newDir(), 'data');
    const env = { DATA_DIR: dataDir };

    const first = spawnServer({ env });
    const url = await first.listening;
    assert.equal(await statusOf(url, '/healthz'), 200);
    assert.equal(await statusOf(url, '/readyz'), 200);
    const ready = await fetch(`${url}/readyz`).then((r) => r.json());
    assert.deepEqual(ready, { status: 'ready', database: 'pglite' });
    assert.ok(
      existsSync(join(dataDir, 'pgdata', 'PG_VERSION')),
      'the embedded database lives under DATA_DIR',
    );
    assert.equal((await readFile(join(dataDir, 'latchkey.lock'), 'utf8')).trim(), String(first.child.pid));

    const added = await runCli(['user', 'add', 'kept@example.com', '--password-stdin'], {
      env,
      input: 'kept across restarts\n',
    });
    assert.equal(added.code, 0, added.stderr);
    assert.deepEqual(await first.stop(), { code: 0, signal: null });

    const second = spawnServer({ env });
    const url2 = await second.listening;
    assert.equal(await statusOf(url2, '/readyz'), 200);
    assert.ok(
      !second.logs().some((l) => l.msg === 'migration applied'),
      'a restart finds every migration already applied',
    );
    const listed = await runCli(['user', 'list'], { env });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^kept@example\.com\s/m);
    assert.deepEqual(await second.stop(), { code: 0, signal: null });

    // And the row is in the directory itself, read without any server.
    const db = await openEmbedded({ dataDir });
    try {
      const user = await userStore(db.prisma).findByEmail('kept@example.com');
      assert.ok(user, 'the user is stored in DATA_DIR');
    } finally {
      await db.close();
    }
  });

  it('keeps its data in ./data under the working directory when DATA_DIR is not set', async () => {
    const cwd = await newDir();
    const server = spawnServer({ cwd });
    const url = await server.listening;
    assert.equal(await statusOf(url, '/readyz'), 200);
    assert.ok(existsSync(join(cwd, 'data', 'pgdata', 'PG_VERSION')));
    assert.ok(existsSync(join(cwd, 'data', 'latchkey.lock')));
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
    assert.ok(!existsSync(join(cwd, 'data', 'latchkey.lock')), 'the lock is released on exit');
  });
});
