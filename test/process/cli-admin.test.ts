// The admin CLI end to end: `resource add` prints /introspect credentials that work, `client add` registers a
// client that completes the flow, `grant revoke` and `client delete` take effect on a running server at once,
// and `resource rotate-secret` retires the old secret. Against Postgres (the CLI is a separate process).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openPostgres } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { FormBrowser } from '../helpers/browser.ts';
import { createPostgresDatabase, DB_KINDS, type TestDatabase } from '../helpers/db.ts';
import { authorizeUrl, exchangeCode } from '../helpers/flow.ts';
import { introspect, startServer, TEST_PASSWORD, type TestServer } from '../helpers/server.ts';
import { runCli } from '../helpers/server-process.ts';

function field(output: string, name: string): string {
  const m = new RegExp(`^${name}: (.+)$`, 'm').exec(output);
  assert.ok(m, `no ${name} in: ${output}`);
  return m[1]!;
}

describe('latchkey client, resource and grant commands [postgres]', {
  skip: !DB_KINDS.includes('postgres'),
}, () => {
  let created: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let database: TestDatabase;
  let server: TestServer;
  let env: Record<string, string>;

  before(async () => {
    created = await createPostgresDatabase();
    const db = openPostgres({ url: created.url });
    await migrate(db);
    database = { kind: 'postgres', db, url: created.url, cleanup: async () => {} };
    server = await startServer('postgres', { database });
    env = { DATABASE_URL: created.url, ISSUER: server.url };
  });
  after(async () => {
    await server.close();
    await database.db.close();
    await created.drop();
  });

  it('registers a resource server and a confidential client whose credentials work end to end', async () => {
    const rsOut = await runCli(['resource', 'add', 'https://MCP.example.com/mcp', '--name', 'Demo MCP'], {
      env,
    });
    assert.equal(rsOut.code, 0, rsOut.stderr);
    assert.equal(field(rsOut.stdout, 'resource'), 'https://mcp.example.com/mcp');
    assert.equal(field(rsOut.stdout, 'introspection_endpoint'), `${server.url}/introspect`);
    const rs = {
      uri: 'https://mcp.example.com/mcp',
      clientId: field(rsOut.stdout, 'client_id'),
      clientSecret: field(rsOut.stdout, 'client_secret'),
    };

    const dup = await runCli(['resource', 'add', 'https://mcp.example.com/mcp'], { env });
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already exists/);

    const clientOut = await runCli(
      [
        'client',
        'add',
        '--name',
        'CLI App',
        '--redirect-uri',
        'http://127.0.0.1/callback',
        '--redirect-uri',
        'https://app.example.com/cb',
        '--confidential',
        '--auth-method',
        'client_secret_post',
      ],
      { env },
    );
    assert.equal(clientOut.code, 0, clientOut.stderr);
    const client = {
      clientId: field(clientOut.stdout, 'client_id'),
      clientSecret: field(clientOut.stdout, 'client_secret'),
      redirectUri: 'http://127.0.0.1:40123/callback',
    };
    assert.equal(field(clientOut.stdout, 'token_endpoint_auth_method'), 'client_secret_post');

    const userOut = await runCli(['user', 'add', 'cli-person@example.com', '--password-stdin'], {
      env,
      input: `${TEST_PASSWORD}\n`,
    });
    assert.equal(userOut.code, 0, userOut.stderr);

    const callback = await new FormBrowser(server.url).authorize(authorizeUrl(server, client), {
      email: 'cli-person@example.com',
      password: TEST_PASSWORD,
    });
    const tokens = await exchangeCode(server, client, callback.searchParams.get('code')!);
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    const access = String(tokens.body.access_token);
    assert.equal((await introspect(server.url, rs, access)).active, true);

    const shown = await runCli(['client', 'show', client.clientId], { env });
    assert.match(
      shown.stdout,
      /redirect_uris: http:\/\/127\.0\.0\.1\/callback https:\/\/app\.example\.com\/cb/,
    );
    assert.match(shown.stdout, /has_secret: yes/);
    assert.doesNotMatch(shown.stdout, new RegExp(client.clientSecret));
    assert.match((await runCli(['client', 'list', '--kind', 'operator'], { env })).stdout, /CLI App/);

    const grants = await runCli(['grant', 'list', '--user', 'cli-person@example.com'], { env });
    const grantId = /^([0-9a-f-]{36})\s/m.exec(grants.stdout)?.[1];
    assert.ok(grantId, grants.stdout);
    assert.equal((await runCli(['grant', 'revoke', grantId], { env })).code, 0);
    assert.deepEqual(await introspect(server.url, rs, access), { active: false });
    assert.equal((await runCli(['grant', 'revoke', 'not-a-grant'], { env })).code, 1);

    const rotated = await runCli(['resource', 'rotate-secret', 'https://mcp.example.com/mcp'], { env });
    const newSecret = field(rotated.stdout, 'client_secret');
    const old = await fetch(`${server.url}/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: access, client_id: rs.clientId, client_secret: rs.clientSecret }),
    });
    assert.equal(old.status, 401, 'the old secret stops working at once');
    assert.deepEqual(await introspect(server.url, { ...rs, clientSecret: newSecret }, access), {
      active: false,
    });

    assert.equal((await runCli(['client', 'delete', client.clientId], { env })).code, 0);
    const after = await exchangeCode(server, client, 'lk_code_x');
    assert.equal(after.status, 401);
    assert.equal((await runCli(['client', 'show', client.clientId], { env })).code, 1);
    assert.equal((await runCli(['resource', 'delete', 'https://mcp.example.com/mcp'], { env })).code, 0);
    assert.match((await runCli(['resource', 'list'], { env })).stdout, /no resource servers/);
  });

  it('refuses bad input with a usage error and changes nothing', async () => {
    for (const args of [
      ['client', 'add', '--redirect-uri', 'https://a.example.com/cb'],
      ['client', 'add', '--name', 'X'],
      ['client', 'add', '--name', 'X', '--redirect-uri', 'http://evil.example.com/cb'],
      ['client', 'add', '--name', 'X', '--redirect-uri', 'https://a.example.com/cb#frag'],
      [
        'client',
        'add',
        '--name',
        'X',
        '--redirect-uri',
        'https://a.example.com/cb',
        '--auth-method',
        'client_secret_post',
      ],
      ['resource', 'add', 'not a url'],
    ]) {
      const r = await runCli(args, { env });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    assert.match((await runCli(['client', 'list'], { env })).stdout, /no clients/);
  });
});
