// Issue 13, acceptance 3: `npm start` as an operator runs it. On a fresh data directory its first line comes at once,
// before the database work, and says where the data lives and what the first start does; SIGTERM (and SIGINT) to
// npm's own PID stops the server; `.env` in the working directory configures it (LOG_FORMAT=pretty included); and a
// busy port (or a HOST that is not here) is one line, before the database opens. The times are reported, not
// asserted (the machine may be loaded); what is asserted is the order of events.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadMigrations } from '../../src/db/migrate.ts';
import { freePort } from '../helpers/net.ts';
import { npmStartDir, spawnServer, statusOf, tempDir } from '../helpers/server-process.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function newDir(): Promise<string> {
  const dir = await tempDir('latchkey-npm-start-');
  cleanups.push(dir.remove);
  return dir.path;
}

/** Resolves with the first complete line on `stream` that matches, and when it arrived (performance.now()). */
function lineOn(
  stream: NodeJS.ReadableStream,
  match: RegExp,
  exited: Promise<unknown>,
): Promise<{ line: string; at: number }> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.on('data', (chunk: Buffer | string) => {
      text += chunk.toString();
      const line = text
        .split('\n')
        .slice(0, -1)
        .find((l) => match.test(l));
      if (line !== undefined) resolve({ line, at: performance.now() });
    });
    void exited.then(() => reject(new Error(`ended before a line matching ${match}:\n${text}`)));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start', () => {
  it('prints its first line before opening a fresh database, and stops the server on SIGTERM to npm', async (t) => {
    const dir = await npmStartDir(await newDir());
    const spawned = performance.now();
    const server = spawnServer({ cwd: dir, npmStart: true });
    const first = await lineOn(server.child.stderr!, /^latchkey /, server.exited);
    const logsByThen = server.logs().length;
    t.diagnostic(`first line ${Math.round(first.at - spawned)} ms after spawning npm start`);
    assert.match(
      first.line,
      new RegExp(
        `^latchkey \\d+\\.\\d+\\.\\d+\\S* is starting: first start: creating the embedded database in ` +
          `${join(dir, 'data').replace(/[.]/g, '\\.')} \\(this takes a few seconds\\); then listening on `,
      ),
    );
    // The database work logs as it goes (migrations, then the socket): none of it had happened.
    assert.equal(logsByThen, 0, 'the line came before the database opened');

    const url = await server.listening;
    await server.logged('latchkey is ready');
    const ready = performance.now();
    t.diagnostic(`ready ${Math.round(ready - spawned)} ms after spawning (a fresh embedded database)`);
    // The fresh database was made from the build's migrated template (src/db/template.ts), and is fully migrated.
    assert.ok(
      server
        .logs()
        .some((l) => /^initialising embedded database in .* \(first start\)…$/.test(String(l.msg))),
    );
    const migrated = server.logs().find((l) => l.msg === 'database migrated');
    assert.equal(migrated?.total, (await loadMigrations()).length);
    const serverPid = server.logs().find((l) => l.msg === 'latchkey is ready')!.pid as number;
    assert.notEqual(serverPid, server.child.pid, 'npm runs the server as its child');

    // SIGTERM to npm's PID, as `kill` or a process manager sends it.
    server.child.kill('SIGTERM');
    await server.logged('stopped');
    const exit = await server.exited;
    assert.equal(exit.signal, null, `npm exits by itself: ${JSON.stringify(exit)}`);
    assert.equal(isAlive(serverPid), false, 'the server is gone with npm');
    assert.equal(await statusOf(url, '/healthz'), 0, 'nothing listens any more');
    assert.ok(!existsSync(join(dir, 'data', 'latchkey.lock')), 'it shut down cleanly, releasing its lock');
  });

  it('reads .env in the working directory (LOG_FORMAT=pretty too) and stops on SIGINT to npm', async () => {
    const dir = await npmStartDir(await newDir());
    const port = await freePort();
    await writeFile(
      join(dir, '.env'),
      `PORT=${port}\nISSUER=https://auth.dotenv.example\nDATA_DIR=./dotenv-data\nLOG_FORMAT=pretty\n`,
    );
    // The real environment sets nothing Latchkey reads, not even spawnServer's usual PORT=0.
    const server = spawnServer({ cwd: dir, npmStart: true, env: { PORT: undefined } });
    const first = await lineOn(server.child.stderr!, /^latchkey /, server.exited);
    assert.match(first.line, /creating the embedded database in .*dotenv-data/);
    assert.match(
      first.line,
      new RegExp(`listening on 127\\.0\\.0\\.1:${port} for https://auth\\.dotenv\\.example$`),
    );
    const ready = await lineOn(server.child.stdout!, / INFO {2}latchkey is ready /, server.exited);
    // Plain lines: time, level, message, fields.
    assert.match(
      ready.line,
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}latchkey is ready {2}issuer=https:\/\/auth\.dotenv\.example database=pglite$/,
    );
    assert.equal(server.logs().length, 0, 'no JSON lines');
    const metadata = await fetch(`http://127.0.0.1:${port}/.well-known/oauth-authorization-server`);
    assert.equal(((await metadata.json()) as { issuer: string }).issuer, 'https://auth.dotenv.example');
    assert.ok(existsSync(join(dir, 'dotenv-data', 'latchkey.lock')), 'DATA_DIR came from .env');

    server.child.kill('SIGINT');
    const stopped = lineOn(server.child.stdout!, / INFO {2}stopped$/, server.exited);
    await stopped;
    await server.exited;
    assert.equal(await statusOf(`http://127.0.0.1:${port}`, '/healthz'), 0, 'the server is gone');
  });
});

describe('a stop while the embedded database is being created', () => {
  it('lets the creation finish, then exits 0 without serving; the next start opens the database', async () => {
    const dataDir = join(await newDir(), 'data');
    const server = spawnServer({ env: { DATA_DIR: dataDir } });
    const first = await lineOn(server.child.stderr!, /^latchkey /, server.exited);
    assert.match(first.line, /first start: creating the embedded database/);
    // The signal handlers are in place before the first line is written.
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
    const said = server.logs().map((l) => l.msg);
    assert.ok(said.includes('stop requested: stopping once the database is ready'), said.join('\n'));
    assert.equal(said.at(-1), 'stopped');
    assert.ok(!said.some((m) => /^Server listening/.test(String(m))), 'it never served');
    assert.ok(!existsSync(join(dataDir, 'latchkey.lock')), 'the lock is released');

    const again = spawnServer({ env: { DATA_DIR: dataDir } });
    const line = await lineOn(again.child.stderr!, /^latchkey /, again.exited);
    assert.match(line.line, /: opening the embedded database in /);
    await again.logged('latchkey is ready');
    assert.ok(
      !again.logs().some((l) => l.msg === 'migration applied'),
      'created and migrated the first time',
    );
    assert.deepEqual(await again.stop(), { code: 0, signal: null });
  });
});

describe('a listen address that cannot be used', () => {
  let holder: Server | undefined;
  after(() => holder?.close());

  it('is one line on stderr, exit 1, before the database opens: a busy port, or a HOST that is not here', async (t) => {
    holder = createServer();
    await new Promise<void>((resolve) => holder!.listen(0, '127.0.0.1', resolve));
    const busy = (holder.address() as { port: number }).port;
    const dataDir = join(await newDir(), 'data');

    const started = performance.now();
    const server = spawnServer({ env: { PORT: String(busy), DATA_DIR: dataDir } });
    assert.deepEqual(await server.exited, { code: 1, signal: null });
    t.diagnostic(`a busy port failed ${Math.round(performance.now() - started)} ms after the spawn`);
    assert.equal(
      server.stderr(),
      `latchkey: cannot listen on 127.0.0.1:${busy}: the port is in use (by another program, or a Latchkey ` +
        'already running). Stop it, or set PORT to a free port.\n',
    );
    assert.equal(server.stdout(), '');
    assert.ok(!existsSync(dataDir), 'the database was never opened');

    // 192.0.2.1 (TEST-NET-1, RFC 5737) is nobody's address: binding fails at once, and nothing is sent anywhere.
    const elsewhere = spawnServer({ env: { HOST: '192.0.2.1', PORT: '3999', DATA_DIR: dataDir } });
    assert.deepEqual(await elsewhere.exited, { code: 1, signal: null });
    assert.equal(
      elsewhere.stderr(),
      'latchkey: cannot listen on 192.0.2.1:3999: 192.0.2.1 is not an address of this machine. Set HOST to one of ' +
        'its addresses (127.0.0.1, or 0.0.0.0 for all).\n',
    );
    assert.ok(!existsSync(dataDir));
  });
});
