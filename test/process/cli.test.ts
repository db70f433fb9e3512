// Acceptance 4 (issue 2): `latchkey user add` then `latchkey user list` show the user both while the embedded server
// runs (through its socket) and while it is stopped (the directory opened directly); nothing the running server
// writes meanwhile is lost; the stored hash is argon2id and never the password. And the embedded database never gets
// a second opener: the CLI goes through a running server, and any other holder of the directory stops it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LOCK_FILE } from '../../src/db/embedded.ts';
import { loadMigrations } from '../../src/db/migrate.ts';
import { verifyPassword } from '../../src/lib/crypto.ts';
import { addUser, cleanups, listedEmails, newDataDir, readUsers } from '../helpers/cli-users.ts';
import { createPostgresDatabase } from '../helpers/db.ts';
import { runCli, spawnServer, statusOf } from '../helpers/server-process.ts';

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
    // A first open says what it does; the database comes from the build's migrated template (or initdb and every
    // migration, when there is none), and the second command below finds nothing left to apply.
    assert.match(added.stderr, /initialising embedded database in .+ \(first start\)/);
    assert.match(added.stderr, /embedded database initialised/);

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
