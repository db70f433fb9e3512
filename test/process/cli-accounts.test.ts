// Issue 13, acceptance 2 (accounts): `latchkey user invite|reset-password|disable|enable|delete` end to end against
// a running server on Postgres. An invitation prints a one-time link on the server's issuer (stored only hashed)
// where the person sets their own password; a reset link replaces the password and ends the person's sessions;
// disable and delete end sessions and grants at once, as /introspect sees; enable lets the person back in, with
// their apps to approve again. And `grant revoke` forgets the approval, so the app's next request asks again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openPostgres } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { hashSecret } from '../../src/lib/crypto.ts';
import { FormBrowser } from '../helpers/browser.ts';
import { createPostgresDatabase, DB_KINDS, type TestDatabase } from '../helpers/db.ts';
import { authorizeUrl, exchangeCode } from '../helpers/flow.ts';
import {
  addClient,
  addResourceServer,
  introspect,
  startServer,
  TEST_PASSWORD,
  type TestClient,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';
import { runCli } from '../helpers/server-process.ts';

function field(output: string, name: string): string {
  const m = new RegExp(`^${name}: (.+)$`, 'm').exec(output);
  assert.ok(m, `no ${name} in: ${output}`);
  return m[1]!;
}

describe('latchkey user invite, reset-password, disable, enable and delete [postgres]', {
  skip: !DB_KINDS.includes('postgres'),
}, () => {
  let created: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let database: TestDatabase;
  let server: TestServer;
  let env: Record<string, string>;
  let rs: TestResourceServer;
  let client: TestClient;

  before(async () => {
    created = await createPostgresDatabase();
    const db = openPostgres({ url: created.url });
    await migrate(db);
    database = { kind: 'postgres', db, url: created.url, cleanup: async () => {} };
    server = await startServer('postgres', { database });
    env = { DATABASE_URL: created.url, ISSUER: server.url };
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    client = await addClient(server.stores, { name: 'CLI Test App' });
  });
  after(async () => {
    await server.close();
    await database.db.close();
    await created.drop();
  });

  /** Follows a printed link in a browser and chooses `password` there. */
  async function setPassword(link: string, password: string): Promise<void> {
    const b = new FormBrowser(server.url);
    const page = await b.request(link);
    assert.equal(page.status, 200, page.html.slice(0, 300));
    const done = await b.submit(page, '/set-password', {
      new_password: password,
      confirm_password: password,
    });
    assert.match(done.html, /Your password is set/);
  }

  async function signIn(email: string, password: string): Promise<{ browser: FormBrowser; status: number }> {
    const browser = new FormBrowser(server.url);
    const page = await browser.submit(await browser.request('/login'), '/login', { email, password });
    return { browser, status: page.status };
  }

  /** Approves the app as `email` and returns its live access token. */
  async function liveToken(email: string, password: string): Promise<string> {
    const callback = await new FormBrowser(server.url).authorize(authorizeUrl(server, client), {
      email,
      password,
    });
    const tokens = await exchangeCode(server, client, callback.searchParams.get('code')!);
    const token = String(tokens.body.access_token);
    assert.equal((await introspect(server.url, rs, token)).active, true);
    assert.equal((await introspect(server.url, rs, token)).active, true, 'now cached by the server');
    return token;
  }

  it('invites a new person with a one-time link on the server’s issuer, stored only as a hash', async () => {
    const out = await runCli(['user', 'invite', 'Invited@Example.com', '--name', 'Ada'], { env });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(field(out.stdout, 'user'), 'invited@example.com');
    const link = field(out.stdout, 'link');
    assert.match(link, new RegExp(`^${server.url}/set-password\\?token=lk_pw_[A-Za-z0-9_-]{43}$`));
    assert.match(field(out.stdout, 'expires'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    assert.match(out.stderr, /works once/);

    const token = new URL(link).searchParams.get('token')!;
    const rows = await database.db.prisma.passwordToken.findMany();
    assert.deepEqual(
      rows.map((r) => r.tokenHash),
      [hashSecret(token)],
    );
    const user = await server.stores.users.findByEmail('invited@example.com');
    assert.equal(user?.passwordHash, null, 'no password until the person chooses one');
    assert.equal(user?.name, 'Ada');

    assert.equal((await signIn('invited@example.com', TEST_PASSWORD)).status, 401);
    await setPassword(link, TEST_PASSWORD);
    assert.equal((await signIn('invited@example.com', TEST_PASSWORD)).status, 200);
    assert.equal((await new FormBrowser(server.url).request(link)).status, 400, 'the link is spent');

    const again = await runCli(['user', 'invite', 'invited@example.com'], { env });
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /already has a password: use 'latchkey user reset-password invited@example\.com'/,
    );
  });

  it('resets a password by link: the old one stops working and the person’s sessions end', async () => {
    const added = await runCli(['user', 'add', 'resets@example.com', '--password-stdin'], {
      env,
      input: `${TEST_PASSWORD}\n`,
    });
    assert.equal(added.code, 0, added.stderr);
    const { browser } = await signIn('resets@example.com', TEST_PASSWORD);
    assert.match((await browser.request('/')).html, /Your account/);

    const out = await runCli(['user', 'reset-password', 'resets@example.com'], { env });
    assert.equal(out.code, 0, out.stderr);
    await setPassword(field(out.stdout, 'link'), 'the new password 2');
    assert.doesNotMatch((await browser.request('/')).html, /Your account/, 'the old session ended');
    assert.equal((await signIn('resets@example.com', TEST_PASSWORD)).status, 401);
    assert.equal((await signIn('resets@example.com', 'the new password 2')).status, 200);
  });

  it('disables a person: sessions and tokens end at once; enable lets them in, and their apps ask again', async () => {
    const email = 'disabled@example.com';
    await runCli(['user', 'add', email, '--password-stdin'], { env, input: `${TEST_PASSWORD}\n` });
    const token = await liveToken(email, TEST_PASSWORD);
    const { browser } = await signIn(email, TEST_PASSWORD);

    const out = await runCli(['user', 'disable', email], { env });
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual([field(out.stdout, 'user'), field(out.stdout, 'status')], [email, 'disabled']);
    // The command's NOTIFY reached the server: its cached answer is gone.
    await server.app.latchkey.changes.flush();
    assert.deepEqual(await introspect(server.url, rs, token), { active: false });
    assert.doesNotMatch((await browser.request('/')).html, /Your account/);
    assert.equal((await signIn(email, TEST_PASSWORD)).status, 401);
    const reset = await runCli(['user', 'reset-password', email], { env });
    assert.equal(reset.code, 1);
    assert.match(reset.stderr, /is disabled: run 'latchkey user enable disabled@example\.com' first/);
    assert.match((await runCli(['user', 'list'], { env })).stdout, /^disabled@example\.com\s+-\s+yes\s/m);

    const enabled = await runCli(['user', 'enable', email], { env });
    assert.equal(enabled.code, 0, enabled.stderr);
    assert.equal(field(enabled.stdout, 'status'), 'enabled');
    assert.deepEqual(
      await introspect(server.url, rs, token),
      { active: false },
      'revoked tokens stay revoked',
    );
    const again = await signIn(email, TEST_PASSWORD);
    assert.equal(again.status, 200);
    const consent = await again.browser.request(authorizeUrl(server, client));
    assert.equal(consent.redirectedTo, undefined, 'the approval was forgotten');
    assert.match(consent.html, /Allow CLI Test App/);
  });

  it('deletes a person with everything of theirs; their token reads inactive at once', async () => {
    const email = 'deleted@example.com';
    await runCli(['user', 'add', email, '--password-stdin'], { env, input: `${TEST_PASSWORD}\n` });
    const token = await liveToken(email, TEST_PASSWORD);
    const out = await runCli(['user', 'delete', email], { env });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(field(out.stdout, 'status'), 'deleted');
    await server.app.latchkey.changes.flush();
    assert.deepEqual(await introspect(server.url, rs, token), { active: false });
    assert.equal(await server.stores.users.findByEmail(email), null);
    assert.doesNotMatch((await runCli(['user', 'list'], { env })).stdout, /deleted@example\.com/);
    const twice = await runCli(['user', 'delete', email], { env });
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /no user deleted@example\.com/);
  });

  it('forgets the approval when an operator revokes a grant: the app’s next request shows consent', async () => {
    const email = 'granted@example.com';
    await runCli(['user', 'add', email, '--password-stdin'], { env, input: `${TEST_PASSWORD}\n` });
    const token = await liveToken(email, TEST_PASSWORD);
    const grants = await runCli(['grant', 'list', '--user', email], { env });
    const grantId = /^([0-9a-f-]{36})\s/m.exec(grants.stdout)?.[1];
    assert.ok(grantId, grants.stdout);
    assert.equal((await runCli(['grant', 'revoke', grantId], { env })).code, 0);
    assert.deepEqual(await introspect(server.url, rs, token), { active: false });
    const { browser } = await signIn(email, TEST_PASSWORD);
    const page = await browser.request(authorizeUrl(server, client));
    assert.equal(page.redirectedTo, undefined);
    assert.match(page.html, /Allow CLI Test App/);
  });

  it('refuses a malformed email with exit 2 and an unknown person with exit 1', async () => {
    for (const command of ['invite', 'reset-password', 'disable', 'enable', 'delete']) {
      const bad = await runCli(['user', command, 'not-an-email'], { env });
      assert.equal(bad.code, 2, `${command}: ${bad.stderr}`);
      assert.match(bad.stderr, /"not-an-email" is not an email address\nusage: latchkey user /);
      if (command === 'invite') continue;
      const unknown = await runCli(['user', command, 'nobody@example.com'], { env });
      assert.equal(unknown.code, 1, `${command}: ${unknown.stderr}`);
      assert.match(unknown.stderr, /^latchkey: no user nobody@example\.com\n$/);
    }
  });
});
