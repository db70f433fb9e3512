// DESIGN (Security): tokens, codes, client secrets and session ids are stored only as SHA-256 hashes, and
// passwords as argon2id. After a run of every flow, no secret that crossed the wire is found in any column
// of any table.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { authorizeUrl, exchangeCode, refreshToken } from '../helpers/flow.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  introspect,
  startServer,
  TEST_PASSWORD,
  type TestServer,
} from '../helpers/server.ts';

forEachDatabase('secrets at rest', (kind) => {
  let server: TestServer;
  const secrets = new Set<string>();

  before(async () => {
    server = await startServer(kind);
  });
  after(() => server.close());

  it('stores no plaintext token, code, secret, session id or password in any table', async () => {
    secrets.add(TEST_PASSWORD);
    const rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    secrets.add(rs.clientSecret);
    const email = await addUser(server.stores);
    for (const method of ['none', 'client_secret_post'] as const) {
      const client = await addClient(server.stores, { authMethod: method });
      if (client.clientSecret) secrets.add(client.clientSecret);
      const browser = new FormBrowser(server.url);
      const callback = await browser.authorize(authorizeUrl(server, client), {
        email,
        password: TEST_PASSWORD,
      });
      for (const v of browser.cookies.values()) secrets.add(v);
      const code = callback.searchParams.get('code')!;
      secrets.add(code);
      const t = (await exchangeCode(server, client, code)).body;
      secrets.add(String(t.access_token));
      secrets.add(String(t.refresh_token));
      // Two refreshes at once: the second gets the first one's answer, kept sealed for REFRESH_REUSE_WINDOW.
      const [r, twin] = await Promise.all([
        refreshToken(server, client, String(t.refresh_token)).then((res) => res.body),
        refreshToken(server, client, String(t.refresh_token)).then((res) => res.body),
      ]);
      assert.deepEqual(twin, r);
      secrets.add(String(r.access_token));
      secrets.add(String(r.refresh_token));
      assert.equal((await introspect(server.url, rs, String(r.access_token))).active, true);
      const csrf = /name="csrf_token" value="([^"]+)"/.exec((await browser.request('/')).html)?.[1];
      if (csrf) secrets.add(csrf);
    }
    // A one-time password link (issue 13), used to set a password, and a password changed while signed in.
    const invited = await server.stores.users.create({ email: 'invited@example.com' });
    const link = await server.stores.accounts.createPasswordLink(
      invited.id,
      'invite',
      3600,
      server.clock.now(),
    );
    secrets.add(link.token);
    const chosen = 'chosen from the link 1';
    const changed = 'changed while signed in 2';
    secrets.add(chosen).add(changed);
    const browser = new FormBrowser(server.url);
    const form = await browser.request(`/set-password?token=${link.token}`);
    const set = await browser.submit(form, '/set-password', {
      new_password: chosen,
      confirm_password: chosen,
    });
    assert.equal(set.status, 200, set.html.slice(0, 300));
    const signedIn = await browser.submit(await browser.request('/login'), '/login', {
      email: 'invited@example.com',
      password: chosen,
    });
    assert.equal(signedIn.status, 200);
    const done = await browser.submit(await browser.request('/account/password'), '/account/password', {
      current_password: chosen,
      new_password: changed,
      confirm_password: changed,
    });
    assert.match(done.html, /Your password is changed/);
    assert.ok(secrets.size >= 15);

    const dump = await server.database.db.withConnection(async (c) => {
      const tables = await c.query<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
      );
      let text = '';
      for (const { table_name } of tables) {
        const rows = await c.query<{ row: string }>(`SELECT t::text AS row FROM "${table_name}" t`);
        text += rows.map((r) => r.row).join('\n');
      }
      return { text, tables: tables.length };
    });
    assert.ok(dump.tables >= 10, 'every table was read');
    assert.ok(dump.text.includes(email), 'the dump is real (it contains the user email)');
    for (const s of secrets)
      assert.equal(dump.text.includes(s), false, `a secret (${s.slice(0, 6)}…) is stored in plaintext`);
    assert.match(dump.text, /\$argon2id\$/);
  });

  it('keeps the answer for the refresh reuse window sealed: no token in it, in text or in any of its decoded parts', async () => {
    const rows = await server.database.db.prisma.refreshReplay.findMany();
    assert.ok(rows.length >= 2, 'each refresh above kept its answer');
    for (const row of rows) {
      const decoded = row.sealed
        .split('.')
        .map((part) => Buffer.from(part, 'base64url').toString('latin1'))
        .join('\n');
      for (const s of secrets) {
        assert.equal(row.sealed.includes(s), false, `a secret (${s.slice(0, 6)}…) is in a kept answer`);
        assert.equal(decoded.includes(s), false, `a secret (${s.slice(0, 6)}…) is in a kept answer's bytes`);
      }
      assert.equal(/lk_(at|rt)_/.test(row.sealed + decoded), false, 'no token prefix in a kept answer');
    }
  });
});
