// Acceptance 4 (issue 2), continued from cli.test.ts (split so that each file fits the runner's 240 s budget on a
// loaded machine): a password typed at a terminal, commands writing through a busy server's socket, a killed server's
// lock taken over, and a directory another live process holds refused.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LOCK_FILE, openEmbedded, SOCKET_FILE } from '../../src/db/embedded.ts';
import { hashSecret, verifyPassword } from '../../src/lib/crypto.ts';
import { rateLimitKey } from '../../src/store/rate-limits.ts';
import {
  addUser,
  cleanups,
  failSignIn,
  hasScript,
  listedEmails,
  newDataDir,
  readUsers,
  registerClient,
  runCodeFlow,
} from '../helpers/cli-users.ts';
import { freePort } from '../helpers/net.ts';
import { CLI_JS, cleanEnv, endWithTests, runCli, spawnServer } from '../helpers/server-process.ts';

describe('latchkey user add and user list, beside other processes', () => {
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
          limits.some((l) => l.key === rateLimitKey(`login-account:${email}`) && l.hits === 1),
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
    // One plain line on stderr that names the holder and what to do.
    assert.match(
      server.stderr(),
      new RegExp(
        `^latchkey: the embedded database in .+ is in use by process ${holder.pid}, .*kill ${holder.pid}.*DATA_DIR\\.$`,
        'm',
      ),
    );
    assert.ok(!/\n\s+at /.test(server.stderr()), 'no stack trace');
    assert.ok(!existsSync(join(dataDir, 'pgdata')), 'nobody opened the database');
    assert.equal((await readFile(join(dataDir, LOCK_FILE), 'utf8')).trim(), String(holder.pid));
  });
});
