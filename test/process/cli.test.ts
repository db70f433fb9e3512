// Acceptance 4 (issue 2): `latchkey user add` then `latchkey user list` show the user both while the embedded server
// runs (through its socket) and while it is stopped (the directory opened directly); nothing the running server
// writes meanwhile is lost; the stored hash is argon2id and never the password. And the embedded database never gets
// a second opener: the CLI goes through a running server, and any other holder of the directory stops it.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LOCK_FILE, openEmbedded, SOCKET_FILE } from '../../src/db/embedded.ts';
import { loadMigrations } from '../../src/db/migrate.ts';
import type { User } from '../../src/generated/prisma/client.ts';
import { hashSecret, verifyPassword } from '../../src/lib/crypto.ts';
import { calculateS256Challenge } from '../../src/oauth/pkce.ts';
import { FormBrowser } from '../helpers/browser.ts';
import { createPostgresDatabase } from '../helpers/db.ts';
import { freePort } from '../helpers/net.ts';
import {
  CLI_JS,
  cleanEnv,
  endWithTests,
  runCli,
  spawnServer,
  statusOf,
  tempDir,
} from '../helpers/server-process.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function newDataDir(): Promise<string> {
  const dir = await tempDir('latchkey-cli-');
  cleanups.push(dir.remove);
  return join(dir.path, 'data');
}

/** The users in a stopped server's directory, opened directly. */
async function readUsers(dataDir: string): Promise<User[]> {
  const db = await openEmbedded({ dataDir });
  try {
    return await db.prisma.user.findMany({ orderBy: { email: 'asc' } });
  } finally {
    await db.close();
  }
}

function addUser(env: Record<string, string>, email: string, password: string, ...extra: string[]) {
  return runCli(['user', 'add', email, '--password-stdin', ...extra], { env, input: `${password}\n` });
}

/** The email column of `latchkey user list`'s table. */
function listedEmails(stdout: string): string[] {
  return stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split(/\s+/)[0]!)
    .sort();
}

describe('latchkey user add and user list', () => {
  it('adds and lists a user through the running server, which stays the only opener of its directory', async () => {
    const dataDir = await newDataDir();
    const env = { DATA_DIR: dataDir };
    const server = spawnServer({ env });
    await server.listening;
    const serverPid = String(server.child.pid);

    const added = await addUser(env, 'Running@Example.com', 'while it runs 1', '--name', 'Ada Lovelace');
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /^added user running@example\.com \(id [0-9a-f-]{36}\)\n$/);
    assert.ok(!added.stdout.includes('while it runs 1') && !added.stderr.includes('while it runs 1'));

    const listed = await runCli(['user', 'list'], { env });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^EMAIL\s+NAME\s+DISABLED\s+CREATED\n/);
    assert.match(
      listed.stdout,
      /^running@example\.com\s+Ada Lovelace\s+no\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/m,
    );

    const migrated = await runCli(['migrate'], { env });
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.match(
      migrated.stdout,
      /nothing to apply: all \d+ migrations were already applied \(the running server's/,
    );

    assert.equal(
      (await readFile(join(dataDir, LOCK_FILE), 'utf8')).trim(),
      serverPid,
      'the server kept its lock',
    );
    assert.equal(await statusOf(await server.listening, '/readyz'), 200);
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
    assert.deepEqual(
      (await readUsers(dataDir)).map((u) => u.email),
      ['running@example.com'],
    );
  });

  it('adds and lists a user with the server stopped, opening and migrating the directory itself', async () => {
    const dataDir = await newDataDir();
    const env = { DATA_DIR: dataDir };
    const added = await addUser(env, 'stopped@example.com', 'while it is stopped');
    assert.equal(added.code, 0, added.stderr);
    for (const m of await loadMigrations())
      assert.match(added.stderr, new RegExp(`applied migration ${m.name}`));

    const listed = await runCli(['user', 'list'], { env });
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(listedEmails(listed.stdout), ['stopped@example.com']);
    assert.equal(listed.stderr, '', 'nothing left to migrate the second time');
    assert.ok(!existsSync(join(dataDir, LOCK_FILE)), 'the lock is released when the command ends');

    // The server then starts on what the command wrote.
    const server = spawnServer({ env });
    await server.listening;
    const again = await runCli(['user', 'list'], { env });
    assert.deepEqual(listedEmails(again.stdout), ['stopped@example.com']);
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
  });

  it('stores an argon2id hash that verifies the password and never contains it', async () => {
    const dataDir = await newDataDir();
    const env = { DATA_DIR: dataDir };
    const password = `pw-${randomBytes(9).toString('hex')}`;
    const added = await addUser(env, 'hash@example.com', password);
    assert.equal(added.code, 0, added.stderr);
    const [user] = await readUsers(dataDir);
    assert.match(user?.passwordHash ?? '', /^\$argon2id\$v=19\$/);
    assert.ok(!user!.passwordHash!.includes(password));
    assert.ok(!user!.passwordHash!.includes(Buffer.from(password).toString('base64').replace(/=+$/, '')));
    assert.equal(await verifyPassword(password, user!.passwordHash), true);
    assert.equal(await verifyPassword(`${password}x`, user!.passwordHash), false);
  });

  it('refuses a second user with the same email (any case), exit 1, and changes nothing', async () => {
    const dataDir = await newDataDir();
    const env = { DATA_DIR: dataDir };
    assert.equal((await addUser(env, 'dup@example.com', 'first password', '--name', 'First')).code, 0);
    const [before] = await readUsers(dataDir);

    for (const server of [false, true]) {
      const running = server ? spawnServer({ env }) : undefined;
      await running?.listening;
      const again = await addUser(env, 'DUP@example.com', 'second password', '--name', 'Second');
      assert.equal(again.code, 1);
      assert.equal(again.stderr, 'latchkey: a user with the email dup@example.com already exists\n');
      assert.equal(again.stdout, '');
      if (running) assert.deepEqual(await running.stop(), { code: 0, signal: null });
    }
    const after = await readUsers(dataDir);
    assert.deepEqual(after, [before]);
    assert.equal(await verifyPassword('first password', after[0]!.passwordHash), true);
  });

  it('refuses an empty or short password and a malformed email with exit 2, before touching the database', async () => {
    const dataDir = await newDataDir();
    const env = { DATA_DIR: dataDir };
    const cases: [string, string, RegExp][] = [
      ['a@example.com', '', /the password is empty/],
      ['a@example.com', '\n', /the password is empty/],
      ['a@example.com', 'seven77', /at least 8 characters/],
      ['not-an-email', 'long enough password', /"not-an-email" is not an email address/],
    ];
    // Independent commands on a directory none of them creates: run at once, checked in order.
    const [noTerminal, ...results] = await Promise.all([
      runCli(['user', 'add', 'a@example.com'], { env }),
      ...cases.map(([email, input]) => runCli(['user', 'add', email, '--password-stdin'], { env, input })),
    ]);
    for (const [i, [email, input, message]] of cases.entries()) {
      const r = results[i]!;
      assert.equal(r.code, 2, `${email} / ${JSON.stringify(input)}`);
      assert.match(r.stderr, message);
    }
    assert.equal(noTerminal.code, 2);
    assert.match(noTerminal.stderr, /--password-stdin/);
    assert.ok(!existsSync(dataDir), 'no database was created');
  });

  it('asks twice for the password at a terminal, echoing neither', {
    skip: !hasScript() && 'needs script(1)',
  }, async () => {
    const dataDir = await newDataDir();
    const password = `typed-${randomBytes(6).toString('hex')}`;
    // script(1) gives the command a pseudo-terminal; the answers are typed once each prompt shows.
    const child = endWithTests(
      spawn('script', ['-qfec', `${process.execPath} ${CLI_JS} user add tty@example.com`, '/dev/null'], {
        env: cleanEnv({ DATA_DIR: dataDir }),
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    );
    let screen = '';
    let answered = 0;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      screen += chunk;
      const prompts = (screen.match(/Password: |Repeat password: /g) ?? []).length;
      while (answered < prompts) {
        answered++;
        child.stdin.write(`${password}\r`);
      }
    });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, screen);
    assert.match(screen, /Password: [\s\S]*Repeat password: [\s\S]*added user tty@example\.com/);
    assert.ok(!screen.includes(password), `the password was echoed:\n${screen}`);
    const [user] = await readUsers(dataDir);
    assert.equal(await verifyPassword(password, user?.passwordHash), true);
  });

  it('loses nothing the running server writes while commands add users through its socket', async () => {
    const dataDir = await newDataDir();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = {
      DATA_DIR: dataDir,
      PORT: String(port),
      ISSUER: url,
      // The audience of the tokens.
      RESOURCE_SERVERS: JSON.stringify([
        { uri: 'https://mcp.example.com', client_id: 'rs-cli-test', client_secret: 'x'.repeat(40) },
      ]),
      REGISTRATION_RATE_LIMIT: '100000',
      LOGIN_MAX_ATTEMPTS_PER_ADDRESS: '100000',
    };
    const server = spawnServer({ env });
    await server.listening;
    assert.equal((await addUser(env, 'flow@example.com', 'flow password')).code, 0);

    const cliEmails = Array.from({ length: 6 }, (_, i) => `cli-${i}@example.com`);
    const failedEmails = Array.from({ length: 12 }, (_, i) => `nobody-${i}@example.com`);
    const [cliResults, clientIds, , grants] = await Promise.all([
      Promise.all(cliEmails.map((email) => addUser(env, email, `password of ${email}`))),
      Promise.all(Array.from({ length: 12 }, (_, i) => registerClient(url, `concurrent ${i}`))),
      Promise.all(failedEmails.map((email) => failSignIn(url, email))),
      // Sign-in, consent, code exchange and refresh: the server's own multi-statement transactions.
      Promise.all(Array.from({ length: 4 }, () => runCodeFlow(url, 'flow@example.com', 'flow password'))),
    ]);
    for (const r of cliResults) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await server.stop(), { code: 0, signal: null });

    const db = await openEmbedded({ dataDir });
    try {
      const users = await db.prisma.user.findMany();
      assert.deepEqual(users.map((u) => u.email).sort(), ['flow@example.com', ...cliEmails].sort());
      const clients = await db.prisma.client.findMany({ where: { clientId: { in: clientIds } } });
      assert.equal(clients.length, clientIds.length, 'every registration is stored');
      const limits = await db.prisma.rateLimit.findMany();
      for (const email of failedEmails) {
        assert.ok(
          limits.some((l) => l.key === `login:account:${hashSecret(email)}` && l.hits === 1),
          `the failed sign-in of ${email} is counted`,
        );
      }
      for (const g of grants) {
        const refresh = await db.prisma.refreshToken.findUnique({
          where: { tokenHash: hashSecret(g.refreshToken) },
        });
        assert.ok(refresh, 'the rotated refresh token is stored');
        assert.equal(refresh.rotatedAt, null);
        assert.equal(await db.prisma.grant.count({ where: { id: refresh.grantId, revokedAt: null } }), 1);
      }
    } finally {
      await db.close();
    }
  });

  it('takes over the lock of a server that was killed, and finds its data intact', async () => {
    const dataDir = await newDataDir();
    const env = { DATA_DIR: dataDir };
    const server = spawnServer({ env });
    await server.listening;
    assert.equal((await addUser(env, 'before-kill@example.com', 'before the kill')).code, 0);
    assert.deepEqual(await server.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
    assert.ok(existsSync(join(dataDir, LOCK_FILE)) && existsSync(join(dataDir, SOCKET_FILE)), 'left behind');

    const listed = await runCli(['user', 'list'], { env });
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(listedEmails(listed.stdout), ['before-kill@example.com']);
    assert.ok(!existsSync(join(dataDir, LOCK_FILE)));
  });

  it('refuses, with exit 1 and the holder named, a directory that another live process holds, and creates nothing', async () => {
    const dataDir = await newDataDir();
    const holder = endWithTests(
      spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }),
    );
    cleanups.push(async () => {
      holder.kill();
    });
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(dataDir, LOCK_FILE), `${holder.pid}\n`);

    for (const args of [['user', 'list'], ['migrate']]) {
      const r = await runCli(args, { env: { DATA_DIR: dataDir } });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`in use by process ${holder.pid}`));
      assert.equal(r.stdout, '');
    }
    // A second server is turned away the same way.
    const server = spawnServer({ env: { DATA_DIR: dataDir } });
    assert.deepEqual(await server.exited, { code: 1, signal: null });
    assert.match(server.stdout(), new RegExp(`in use by process ${holder.pid}`));
    assert.ok(!existsSync(join(dataDir, 'pgdata')), 'nobody opened the database');
    assert.equal((await readFile(join(dataDir, LOCK_FILE), 'utf8')).trim(), String(holder.pid));
  });
});

describe('latchkey on PostgreSQL (DATABASE_URL)', () => {
  it('migrates a new database when asked, and until then refuses user commands', async () => {
    const database = await createPostgresDatabase();
    cleanups.push(database.drop);
    const env = { DATABASE_URL: database.url };

    const early = await runCli(['user', 'list'], { env });
    assert.equal(early.code, 1);
    assert.match(early.stderr, /Run 'latchkey migrate' first/);

    const migrations = await loadMigrations();
    const first = await runCli(['migrate'], { env });
    assert.equal(first.code, 0, first.stderr);
    for (const m of migrations) assert.match(first.stdout, new RegExp(`^applied ${m.name}$`, 'm'));
    assert.match(first.stdout, new RegExp(`applied ${migrations.length} of ${migrations.length} migrations`));
    assert.ok(first.stdout.includes(`/${database.name})`), 'it says which database');
    const second = await runCli(['migrate'], { env });
    assert.match(second.stdout, /nothing to apply/);

    assert.equal((await addUser(env, 'pg@example.com', 'postgres password')).code, 0);
    const listed = await runCli(['user', 'list'], { env });
    assert.deepEqual(listedEmails(listed.stdout), ['pg@example.com']);
  });
});

describe('latchkey usage', { concurrency: true }, () => {
  it('prints help for the program, a group and a command, exit 0', async () => {
    const [main, group, command] = await Promise.all([
      runCli(['--help']),
      runCli(['user', '--help']),
      runCli(['user', 'add', '--help']),
    ]);
    assert.equal(main.code, 0);
    for (const c of ['migrate', 'user add EMAIL', 'user list'])
      assert.match(main.stdout, new RegExp(`^  ${c} `, 'm'));
    assert.equal(group.code, 0);
    assert.match(group.stdout, /user add EMAIL/);
    assert.equal(command.code, 0);
    assert.match(command.stdout, /^usage: latchkey user add EMAIL \[options\]/);
    assert.match(command.stdout, /--password-stdin/);
  });

  it('answers an unknown command, a missing argument or an unknown option with the usage and exit 2', async () => {
    const calls = [
      [],
      ['frobnicate'],
      ['user'],
      ['user', 'frob'],
      ['user', 'add'],
      ['user', 'list', '--bogus'],
    ];
    const results = await Promise.all(calls.map((args) => runCli(args)));
    for (const [i, args] of calls.entries()) {
      const r = results[i]!;
      assert.equal(r.code, 2, `latchkey ${args.join(' ')}`);
      assert.match(r.stderr, /usage: latchkey/);
      assert.equal(r.stdout, '');
    }
  });
});

function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function registerClient(url: string, name: string): Promise<string> {
  const res = await fetch(`${url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: name, redirect_uris: ['http://127.0.0.1:9/callback'] }),
  });
  const body = (await res.json()) as { client_id: string };
  assert.equal(res.status, 201, JSON.stringify(body));
  return body.client_id;
}

async function failSignIn(url: string, email: string): Promise<void> {
  const browser = new FormBrowser(url);
  const page = await browser.request('/login');
  const after = await browser.submit(page, '/login', { email, password: 'not the password' });
  assert.ok(after.status >= 400 && after.status < 500, `a failed sign-in is refused (${after.status})`);
}

/** Registers a client, signs in, approves, exchanges the code and refreshes once; returns the live refresh token. */
async function runCodeFlow(url: string, email: string, password: string): Promise<{ refreshToken: string }> {
  const res = await fetch(`${url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'flow client',
      redirect_uris: ['http://127.0.0.1:9/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
    }),
  });
  const { client_id: clientId } = (await res.json()) as { client_id: string };
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL(`${url}/authorize`);
  authorize.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: 'http://127.0.0.1:9/callback',
    response_type: 'code',
    code_challenge: calculateS256Challenge(verifier),
    code_challenge_method: 'S256',
    state: 'flow',
    scope: 'mcp',
  }).toString();
  const callback = await new FormBrowser(url).authorize(authorize.href, { email, password });
  const code = callback.searchParams.get('code');
  assert.ok(code, callback.href);
  const tokens = await token(url, {
    grant_type: 'authorization_code',
    code,
    code_verifier: verifier,
    redirect_uri: 'http://127.0.0.1:9/callback',
    client_id: clientId,
  });
  const refreshed = await token(url, {
    grant_type: 'refresh_token',
    refresh_token: tokens.refresh_token!,
    client_id: clientId,
  });
  return { refreshToken: refreshed.refresh_token! };
}

async function token(url: string, params: Record<string, string>): Promise<{ refresh_token?: string }> {
  const res = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  });
  const body = (await res.json()) as { refresh_token?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.ok(body.refresh_token, 'a refresh token is issued');
  return body;
}
