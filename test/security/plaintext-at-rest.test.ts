// DESIGN (Security): tokens, codes, client secrets and session ids are stored only as SHA-256 hashes, and
// passwords as argon2id. After a run of every flow, no secret that crossed the wire is found in any column
// of any table.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { hashSecret } from '../../src/lib/crypto.ts';
import { parseUpstreamTokenKeys } from '../../src/upstream/config.ts';
import { upstreamCipher } from '../../src/upstream/crypto.ts';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { callbackUri, captureLogs, startFederated, TEST_KEY_K1 } from '../helpers/federation.ts';
import { authorizeUrl, exchangeCode, refreshToken } from '../helpers/flow.ts';
import { GitHubStandin } from '../helpers/github-standin.ts';
import { PlaneStandin } from '../helpers/plane-standin.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  freePort,
  introspect,
  startServer,
  TEST_PASSWORD,
  type TestServer,
} from '../helpers/server.ts';
import { startUpstreamOidc, type UpstreamOidc } from '../helpers/upstream-oidc.ts';

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
    // Failed sign-ins, of a known account and of an unknown one, are in the audit trail: without the email typed.
    const unknownEmail = 'nobody-here@example.com';
    for (const attempt of [email, unknownEmail]) {
      const b = new FormBrowser(server.url);
      const failed = await b.submit(await b.request('/login'), '/login', {
        email: attempt,
        password: 'not the password 3',
      });
      assert.equal(failed.status, 401);
    }
    secrets.add('not the password 3');
    assert.ok(secrets.size >= 15);
    // Client traces hold these flows' steps (README: Client traces), and a refused redirect_uri loses its query.
    const traced = await addClient(server.stores);
    const leak = 'trace-query-secret-0123456789';
    secrets.add(leak);
    await fetch(authorizeUrl(server, traced, { redirect_uri: `${traced.redirectUri}?leak=${leak}` }));
    await server.app.latchkey.traces.flush();
    const traces = await server.database.db.prisma.clientTrace.findMany();
    assert.ok(traces.length >= 10, 'client_traces has rows');
    assert.ok(traces.some((t) => t.clientId === traced.clientId && t.detail?.includes(traced.redirectUri)));
    assert.equal(
      traces
        .map((t) => `${t.detail} ${t.resource}`)
        .join('\n')
        .includes(email),
      false,
      'no email',
    );

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

    // The audit trail (README: Audit trail) holds events of all of the above, and neither a secret, a hash of one,
    // an argon2id hash nor an email: people are there by user id.
    const audit = await server.database.db.withConnection(async (c) => {
      const rows = await c.query<{ row: string }>(`SELECT t::text AS row FROM audit_events t`);
      return rows.map((r) => r.row).join('\n');
    });
    for (const action of ['sign_in', 'consent', 'grant_created', 'user_added', 'user_invited']) {
      assert.ok(audit.includes(`,${action},`), `the audit trail has a ${action} event`);
    }
    assert.match(audit, /,sign_in,failure,system,/, 'the failed sign-in of an unknown account');
    for (const s of [...secrets, ...[...secrets].map(hashSecret)])
      assert.equal(
        audit.includes(s),
        false,
        `a secret or its hash (${s.slice(0, 6)}…) is in the audit trail`,
      );
    for (const e of [email, unknownEmail, 'invited@example.com', '@example.com'])
      assert.equal(audit.includes(e), false, `an email (${e}) is in the audit trail`);
    assert.doesNotMatch(audit, /argon2|\$2[aby]\$/);
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

// Federated sign-in (spec federation §11 S1, S4): after sign-ins through a real OIDC provider and the Plane and
// GitHub stand-ins, no upstream access or refresh token, upstream code, state, code_verifier, nonce or provider client
// secret is in any column of any table, nor in any log line; `state` and `nonce` keys are censored in logs.
forEachDatabase('upstream secrets at rest and in logs', (kind) => {
  let server: TestServer;
  let op: UpstreamOidc;
  let plane: PlaneStandin;
  let gh: GitHubStandin;
  const logs = captureLogs('debug');

  before(async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    op = await startUpstreamOidc({ redirectUris: [callbackUri(issuer, 'corp')], rotateRefreshToken: true });
    plane = await PlaneStandin.start({ redirectUris: [callbackUri(issuer, 'plane')] });
    gh = await GitHubStandin.start({ redirectUris: [callbackUri(issuer, 'github')], expiring: true });
    server = await startFederated(kind, {
      port,
      logger: logs.logger,
      providers: () => [
        {
          id: 'corp',
          type: 'oidc',
          name: 'Corp',
          issuer: op.issuer,
          client_id: op.clientId,
          client_secret: op.clientSecret,
          scopes: ['openid', 'email', 'profile', 'offline_access'],
          extra_authorize_params: { prompt: 'consent' },
          create_users: true,
          allow_anyone: true,
        },
        {
          id: 'plane',
          type: 'plane',
          client_id: plane.clientId,
          client_secret: plane.clientSecret,
          base_url: plane.baseUrl,
          create_users: true,
          allow_anyone: true,
        },
        {
          id: 'github',
          type: 'github',
          client_id: gh.clientId,
          client_secret: gh.clientSecret,
          base_url: gh.url,
          api_base_url: gh.url,
          create_users: true,
          allow_anyone: true,
        },
      ],
    });
  });
  after(async () => {
    await server?.close();
    await op?.close();
    await plane?.close();
    await gh?.close();
  });

  it('S1/S4: no upstream secret in any table or log line; state and nonce censored', async () => {
    const rs = await addResourceServer(server.stores, `${server.url}/mcp`);
    const client = await addClient(server.stores);

    op.accounts.set('s1-alice', { email: 's1-alice@corp.example', email_verified: true });
    {
      const browser = new FormBrowser(server.url, { follow: [op.issuer] });
      const login = await browser.request(authorizeUrl(server, client, { resource: rs.uri }));
      const started = await browser.submit(login, '/login/upstream/corp');
      const consent = await op.signIn(browser, started, 's1-alice');
      const back = await browser.submit(consent, '/authorize', {}, { name: 'decision', value: 'approve' });
      const code = new URL(back.redirectedTo!).searchParams.get('code')!;
      assert.equal((await exchangeCode(server, client, code)).status, 200);
    }
    plane.addUser();
    gh.addUser();
    for (const [id, origin] of [
      ['plane', plane.baseUrl],
      ['github', gh.url],
    ] as const) {
      const browser = new FormBrowser(server.url, { follow: [origin] });
      const page = await browser.submit(await browser.request('/login'), `/login/upstream/${id}`);
      assert.equal(page.status, 200, id);
    }
    // A denied sign-in with an attacker-controlled description, and a tampered callback: logged, never raw.
    plane.deny = true;
    {
      const browser = new FormBrowser(server.url, { follow: [plane.baseUrl] });
      const page = await browser.submit(await browser.request('/login'), '/login/upstream/plane');
      assert.equal(page.status, 200);
    }
    plane.deny = false;

    const secrets = new Set<string>([op.clientSecret, plane.clientSecret, gh.clientSecret]);
    for (const t of [...op.issuedAccessTokens, ...plane.issuedAccessTokens, ...gh.issuedAccessTokens])
      secrets.add(t);
    for (const t of [
      ...plane.refreshTokens.keys(),
      ...gh.refreshTokens.keys(),
      ...plane.codes.keys(),
      ...gh.codes.keys(),
    ])
      secrets.add(t);
    for (const r of op.requests) {
      for (const k of ['state', 'nonce', 'code_challenge']) if (r.query[k]) secrets.add(r.query[k]);
    }
    for (const r of [...plane.requests, ...gh.requests]) {
      for (const k of ['state', 'code_challenge']) if (r.query[k]) secrets.add(r.query[k]);
      const body = (r.body ?? {}) as Record<string, unknown>;
      for (const k of ['code', 'code_verifier', 'refresh_token', 'client_secret'])
        if (typeof body[k] === 'string') secrets.add(body[k] as string);
    }
    // The stored tokens themselves, decrypted: every upstream refresh token is covered too.
    const cipher = upstreamCipher(parseUpstreamTokenKeys(TEST_KEY_K1)!);
    const logins = await server.database.db.prisma.upstreamLogin.findMany();
    assert.equal(logins.length, 3);
    for (const l of logins) {
      secrets.add(
        cipher.decrypt(l.accessTokenEnc, {
          table: 'upstream_logins',
          column: 'access_token_enc',
          rowId: l.id,
        }),
      );
      assert.ok(l.refreshTokenEnc, `${l.provider} returned a refresh token`);
      secrets.add(
        cipher.decrypt(l.refreshTokenEnc, {
          table: 'upstream_logins',
          column: 'refresh_token_enc',
          rowId: l.id,
        }),
      );
    }
    assert.ok(secrets.size >= 15, `only ${secrets.size} secrets collected`);

    const dump = await server.database.db.withConnection(async (c) => {
      const tables = await c.query<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
      );
      let text = '';
      for (const { table_name } of tables) {
        const rows = await c.query<{ row: string }>(`SELECT t::text AS row FROM "${table_name}" t`);
        text += rows.map((r) => r.row).join('\n');
      }
      return text;
    });
    assert.match(dump, /v1\.k1\./, 'the dump holds the encrypted upstream tokens');
    assert.match(dump, /s1-alice@corp\.example/);
    const logText = logs.text();
    assert.ok(logs.lines.length > 10, 'the logs were captured');
    for (const s of secrets) {
      assert.equal(dump.includes(s), false, `an upstream secret (${s.slice(0, 6)}…) is stored in plaintext`);
      assert.equal(logText.includes(s), false, `an upstream secret (${s.slice(0, 6)}…) is in the logs`);
    }
    server.app.log.info({ state: 'state-value', nonce: 'nonce-value', subject_token: 'st-value' }, 'probe');
    const probe = logs.parsed().find((l) => l.msg === 'probe')!;
    assert.deepEqual(
      [probe.state, probe.nonce, probe.subject_token],
      ['[redacted]', '[redacted]', '[redacted]'],
    );
  });
});
