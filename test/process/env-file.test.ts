// `npm start` and the `latchkey` command read `.env` in the working directory (README "Configuration"): its
// variables configure the process, real environment variables win over it, and a line it cannot read stops the
// start with the file and line named, not a stack trace.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPostgresDatabase, DB_KINDS } from '../helpers/db.ts';
import { runCli, spawnServer, tempDir } from '../helpers/server-process.ts';

async function issuerOf(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/.well-known/oauth-authorization-server`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { issuer: string }).issuer;
}

describe('.env in the working directory', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    dir = await tempDir('latchkey-dotenv-');
  });
  after(() => dir.remove());

  async function cwdWith(name: string, dotenv: string): Promise<string> {
    const cwd = join(dir.path, name);
    await mkdir(cwd);
    await writeFile(join(cwd, '.env'), dotenv);
    return cwd;
  }

  it('configures the server and the latchkey command run there', async () => {
    const cwd = await cwdWith(
      'configured',
      '# from the file\nISSUER=https://auth.from-dotenv.example\nDATA_DIR="./dotenv-data"\n',
    );
    const server = spawnServer({ cwd });
    const url = await server.listening;
    assert.equal(await issuerOf(url), 'https://auth.from-dotenv.example');
    assert.ok(existsSync(join(cwd, 'dotenv-data', 'latchkey.lock')), 'DATA_DIR came from .env');
    assert.ok(!existsSync(join(cwd, 'data')));

    // The command finds the same embedded database (through the running server) from the same .env.
    const added = await runCli(['user', 'add', 'dotenv@example.com', '--password-stdin'], {
      cwd,
      input: 'a password from stdin\n',
    });
    assert.equal(added.code, 0, added.stderr);
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
    const listed = await runCli(['user', 'list'], { cwd });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^dotenv@example\.com\s/m);
  });

  it('gives way to a variable set in the real environment', {
    skip: !DB_KINDS.includes('postgres') && 'runs on Postgres',
  }, async () => {
    // PORT=70000 would stop the start; the real PORT (0, set by spawnServer) wins, as does the real ISSUER.
    const cwd = await cwdWith('overridden', 'PORT=70000\nISSUER=https://auth.from-dotenv.example\n');
    // On Postgres: a fresh embedded database would take seconds to create and prove nothing more here.
    const database = await createPostgresDatabase();
    try {
      const server = spawnServer({
        cwd,
        env: { ISSUER: 'https://auth.from-env.example', DATABASE_URL: database.url },
      });
      const url = await server.listening;
      assert.equal(await issuerOf(url), 'https://auth.from-env.example');
      assert.deepEqual(await server.stop(), { code: 0, signal: null });
    } finally {
      await database.drop();
    }
  });

  it('stops the server and the command at a line it cannot read, naming the file and the line', async () => {
    const cwd = await cwdWith('malformed', '# fine\nLOG_LEVEL=info\nISSUER https://auth.example.com\n');
    const file = join(cwd, '.env');
    const server = spawnServer({ cwd });
    assert.deepEqual(await server.exited, { code: 2, signal: null });
    assert.equal(
      server.stderr(),
      `latchkey: invalid configuration: ${file} line 3: expected NAME=value (a name of letters, digits and _)\n`,
    );
    assert.ok(!/Server listening/.test(server.stdout()), 'it never listened');
    assert.ok(!existsSync(join(cwd, 'data')), 'nothing was written');

    const r = await runCli(['user', 'list'], { cwd });
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`invalid configuration: ${file.replace(/[.]/g, '\\.')} line 3: `));
    assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
  });
});
