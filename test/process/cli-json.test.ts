// Issue 13, acceptance 2 (the CLI framework): `latchkey --version`; `--json` on every command, parsed here; a
// "did you mean" for a mistyped command and option; `grant list` with client ids and `--client`; `client list` with
// kind, type and last use; and URLs printed with the running server's issuer, whatever the command's environment.
// Against a server process (dist/main.js) on Postgres, as an operator runs them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addUser, newDataDir, registerClient, runCodeFlow } from '../helpers/cli-users.ts';
import { createPostgresDatabase, DB_KINDS } from '../helpers/db.ts';
import { freePort } from '../helpers/net.ts';
import { ROOT, runCli, type ServerProcess, spawnServer } from '../helpers/server-process.ts';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Runs a command with --json; asserts exit 0 and nothing on stderr, and returns the parsed stdout. */
async function json<T = Record<string, unknown>>(
  args: readonly string[],
  options: { env: Record<string, string>; input?: string },
): Promise<T> {
  const r = await runCli([...args, '--json'], options);
  assert.equal(r.code, 0, `latchkey ${args.join(' ')} --json: ${r.stderr}`);
  assert.equal(r.stderr, '', `latchkey ${args.join(' ')} --json writes nothing to stderr`);
  return JSON.parse(r.stdout) as T;
}

function field(output: string, name: string): string {
  const m = new RegExp(`^${name}: (.+)$`, 'm').exec(output);
  assert.ok(m, `no ${name} in: ${output}`);
  return m[1]!;
}

describe('latchkey --version and usage mistakes', { concurrency: true }, () => {
  it('prints the package version, as text and as JSON', async () => {
    const [text, asJson] = await Promise.all([runCli(['--version']), runCli(['--version', '--json'])]);
    assert.equal(text.code, 0);
    assert.equal(text.stdout, `latchkey ${VERSION}\n`);
    assert.equal(asJson.code, 0);
    assert.deepEqual(JSON.parse(asJson.stdout), { version: VERSION });
  });

  it('suggests the command meant for a mistyped one, exit 2, in text and as JSON on stderr', async () => {
    const [group, sub, json1, far] = await Promise.all([
      runCli(['usr', 'list']),
      runCli(['grant', 'lsit']),
      runCli(['--json', 'resouce', 'list']),
      runCli(['frobnicate']),
    ]);
    assert.equal(group.code, 2);
    assert.match(group.stderr, /^latchkey: unknown command 'usr'; did you mean 'user'\?\n/);
    assert.equal(sub.code, 2);
    assert.match(sub.stderr, /^latchkey: unknown command 'grant lsit'; did you mean 'grant list'\?\n/);
    assert.equal(json1.code, 2);
    assert.equal(json1.stdout, '');
    assert.deepEqual(JSON.parse(json1.stderr), {
      error: 'usage',
      message: "unknown command 'resouce'; did you mean 'resource'?",
      did_you_mean: ['resource'],
    });
    assert.equal(far.code, 2);
    assert.match(far.stderr, /^latchkey: unknown command 'frobnicate'\n/, 'nothing near: no suggestion');
  });

  it("suggests the option meant for a mistyped one instead of the parser's message, exit 2", async () => {
    const [text, asJson, missing] = await Promise.all([
      runCli(['grant', 'list', '--clinet', 'x']),
      runCli(['client', 'list', '--knid', 'DCR', '--json']),
      runCli(['client', 'add', '--name']),
    ]);
    assert.equal(text.code, 2);
    assert.equal(text.stdout, '');
    assert.match(text.stderr, /^latchkey: unknown option '--clinet'; did you mean '--client'\?\n/);
    assert.match(text.stderr, /^usage: latchkey grant list \[options\]$/m);
    assert.doesNotMatch(text.stderr, /To specify a positional argument/, "not Node's parseArgs message");
    assert.equal(asJson.code, 2);
    assert.deepEqual(JSON.parse(asJson.stderr), {
      error: 'usage',
      message: "unknown option '--knid'; did you mean '--kind'?",
      did_you_mean: ['--kind'],
    });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^latchkey: option '--name' needs a value \(NAME\)\n/);
  });
});

describe('latchkey against a running server [postgres]', { skip: !DB_KINDS.includes('postgres') }, () => {
  let database: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let server: ServerProcess;
  let url: string;
  /** The command's environment: the server's database, and no ISSUER of its own. */
  let env: Record<string, string>;

  before(async () => {
    database = await createPostgresDatabase();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    server = spawnServer({
      env: {
        DATABASE_URL: database.url,
        PORT: String(port),
        ISSUER: url,
        RESOURCE_SERVERS: JSON.stringify([
          { uri: 'https://mcp.example.com', client_id: 'rs-json-test', client_secret: 'x'.repeat(40) },
        ]),
      },
    });
    await server.logged('latchkey is ready');
    env = { DATABASE_URL: database.url };
  });
  after(async () => {
    await server.stop();
    await database.drop();
  });

  it("prints the introspection endpoint with the server's issuer, whatever ISSUER the command has", async () => {
    const none = await runCli(['resource', 'add', 'https://mcp.one.example/mcp'], { env });
    assert.equal(none.code, 0, none.stderr);
    assert.equal(field(none.stdout, 'introspection_endpoint'), `${url}/introspect`);
    assert.doesNotMatch(none.stderr, /No server has started/);

    const other = await runCli(['resource', 'add', 'https://mcp.two.example/mcp'], {
      env: { ...env, ISSUER: 'https://somewhere-else.example' },
    });
    assert.equal(other.code, 0, other.stderr);
    assert.equal(field(other.stdout, 'introspection_endpoint'), `${url}/introspect`);

    const added = await json(['resource', 'add', 'https://mcp.three.example/mcp', '--name', 'Three'], {
      env,
    });
    assert.equal(added.introspection_endpoint, `${url}/introspect`);
    assert.equal(added.resource, 'https://mcp.three.example/mcp');
    assert.equal(added.name, 'Three');
    assert.match(String(added.client_id), /^rs_/);
    assert.equal(typeof added.client_secret, 'string');
    // Back to one resource server: the code flows below name none and get the only one (RFC 8707 default).
    for (const uri of ['https://mcp.one.example/mcp', 'https://mcp.two.example/mcp']) {
      assert.equal((await runCli(['resource', 'delete', uri], { env })).code, 0);
    }
  });

  it('answers --json on every command with one document, and a failure with a JSON error on stderr', async () => {
    const migrated = await json(['migrate'], { env });
    assert.deepEqual(migrated.applied, []);
    assert.ok(Number(migrated.already_applied) >= 3);
    assert.match(String(migrated.database), /^PostgreSQL postgres/);

    const user = await json(['user', 'add', 'json@example.com', '--password-stdin', '--name', 'Jay'], {
      env,
      input: 'json password\n',
    });
    assert.equal(user.email, 'json@example.com');
    assert.equal(user.name, 'Jay');
    const users = await json<Record<string, unknown>[]>(['user', 'list'], { env });
    assert.deepEqual(
      users.map((u) => [u.email, u.name, u.disabled]),
      [['json@example.com', 'Jay', false]],
    );
    assert.ok(!Number.isNaN(Date.parse(String(users[0]!.created_at))));

    const client = await json(
      [
        'client',
        'add',
        '--name',
        'JSON App',
        '--redirect-uri',
        'https://app.example.com/cb',
        '--confidential',
      ],
      { env },
    );
    assert.equal(typeof client.client_secret, 'string');
    assert.deepEqual(client.grant_types, ['authorization_code', 'refresh_token']);
    const shown = await json(['client', 'show', String(client.client_id)], { env });
    assert.equal(shown.kind, 'operator');
    assert.equal(shown.type, 'confidential');
    assert.equal(shown.has_secret, true);
    assert.equal(shown.last_used, null);
    assert.deepEqual(shown.redirect_uris, ['https://app.example.com/cb']);
    assert.ok(!JSON.stringify(shown).includes(String(client.client_secret)), 'no secret in show');

    const resources = await json<Record<string, unknown>[]>(['resource', 'list'], { env });
    assert.ok(resources.some((r) => r.uri === 'https://mcp.example.com' && r.client_id === 'rs-json-test'));
    const rotated = await json(['resource', 'rotate-secret', 'https://mcp.three.example/mcp'], { env });
    assert.equal(typeof rotated.client_secret, 'string');
    assert.deepEqual(await json(['resource', 'delete', 'https://mcp.three.example/mcp'], { env }), {
      deleted: true,
      resource: 'https://mcp.three.example/mcp',
    });

    assert.deepEqual(await json<unknown[]>(['grant', 'list'], { env }), []);
    assert.deepEqual(await json(['client', 'delete', String(client.client_id)], { env }), {
      deleted: true,
      client_id: client.client_id,
    });

    const failed = await runCli(['client', 'show', 'no-such-client', '--json'], { env });
    assert.equal(failed.code, 1);
    assert.equal(failed.stdout, '');
    assert.deepEqual(JSON.parse(failed.stderr), { error: 'failed', message: 'no client no-such-client' });
    const usage = await runCli(['user', 'add', '--json'], { env });
    assert.equal(usage.code, 2);
    assert.deepEqual(JSON.parse(usage.stderr), { error: 'usage', message: 'missing EMAIL' });
    const badConfig = await runCli(['user', 'list', '--json'], { env: { ...env, PORT: 'eighty' } });
    assert.equal(badConfig.code, 2);
    assert.equal(JSON.parse(badConfig.stderr).error, 'configuration');
  });

  it('tells same-named clients apart: grant list shows client ids and filters by --client; client list shows kind, type and last use', async () => {
    assert.equal((await addUser(env, 'grants@example.com', 'grants password')).code, 0);
    // Two clients that both call themselves "flow client", each with a grant.
    await runCodeFlow(url, 'grants@example.com', 'grants password');
    await runCodeFlow(url, 'grants@example.com', 'grants password');
    const idle = await registerClient(url, 'never used');

    const grants = await json<Record<string, unknown>[]>(['grant', 'list'], { env });
    assert.equal(grants.length, 2);
    assert.deepEqual(
      grants.map((g) => g.client_name),
      ['flow client', 'flow client'],
    );
    const [first, second] = grants.map((g) => String(g.client_id));
    assert.notEqual(first, second, 'the ids tell them apart');
    assert.deepEqual(grants[0]!.scopes, ['mcp']);
    assert.equal(grants[0]!.user, 'grants@example.com');
    assert.equal(grants[0]!.resource, 'https://mcp.example.com');

    const text = await runCli(['grant', 'list'], { env });
    assert.match(text.stdout, /^GRANT\s+USER\s+CLIENT_ID\s+CLIENT\s+RESOURCE\s+SCOPE\s+CREATED$/m);
    for (const id of [first, second]) assert.match(text.stdout, new RegExp(`\\s${id}\\s+flow client\\s`));

    const only = await json<Record<string, unknown>[]>(['grant', 'list', '--client', first!], { env });
    assert.deepEqual(
      only.map((g) => g.id),
      [grants[0]!.id],
    );
    const onlyText = await runCli(['grant', 'list', '--client', second!], { env });
    assert.equal(onlyText.code, 0, onlyText.stderr);
    assert.ok(
      onlyText.stdout.includes(String(grants[1]!.id)) && !onlyText.stdout.includes(String(grants[0]!.id)),
    );
    const unknown = await runCli(['grant', 'list', '--client', 'nope'], { env });
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, 'latchkey: no client nope\n');

    const clients = await json<Record<string, unknown>[]>(['client', 'list', '--kind', 'DCR'], { env });
    const byId = new Map(clients.map((c) => [c.client_id, c]));
    for (const id of [first, second]) {
      const c = byId.get(id)!;
      assert.equal(c.kind, 'DCR');
      assert.equal(c.type, 'public');
      assert.ok(!Number.isNaN(Date.parse(String(c.last_used_at))), 'used by its code exchange');
    }
    assert.equal(byId.get(idle)!.last_used_at, null);
    const listed = await runCli(['client', 'list'], { env });
    assert.match(listed.stdout, /^CLIENT_ID\s+KIND\s+TYPE\s+NAME\s+LAST USED$/m);
    assert.match(listed.stdout, new RegExp(`^${idle}\\s+DCR\\s+public\\s+never used\\s+never$`, 'm'));
    assert.match(
      listed.stdout,
      new RegExp(
        `^${first}\\s+DCR\\s+public\\s+flow client\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ$`,
        'm',
      ),
    );
  });
});

describe('latchkey on a database no server has started on [postgres]', {
  skip: !DB_KINDS.includes('postgres'),
}, () => {
  it("prints URLs with the command's own ISSUER, and says so", async () => {
    const database = await createPostgresDatabase();
    try {
      const env = { DATABASE_URL: database.url, ISSUER: 'https://auth.from-the-cli.example' };
      assert.equal((await runCli(['migrate'], { env })).code, 0);
      const added = await runCli(['resource', 'add', 'https://mcp.example.com/mcp'], { env });
      assert.equal(added.code, 0, added.stderr);
      assert.equal(
        field(added.stdout, 'introspection_endpoint'),
        'https://auth.from-the-cli.example/introspect',
      );
      assert.match(
        added.stderr,
        /No server has started on this database yet: the endpoint is from this command's ISSUER/,
      );
    } finally {
      await database.drop();
    }
  });
});

describe('latchkey on a running embedded server', () => {
  it("prints the server's issuer through its socket, though the command has no ISSUER", async () => {
    const dataDir = await newDataDir();
    const server = spawnServer({ env: { DATA_DIR: dataDir, ISSUER: 'https://auth.embedded.example' } });
    await server.logged('latchkey is ready');
    const added = await json(['resource', 'add', 'https://mcp.embedded.example/mcp'], {
      env: { DATA_DIR: dataDir },
    });
    assert.equal(added.introspection_endpoint, 'https://auth.embedded.example/introspect');
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
  });
});
