// What a resource server may receive of the upstream sign-in (spec federation §2.2): the RESOURCE_SERVERS fields
// `upstream_claims`, `upstream_token`, `require_upstream` (C4: a provider id no provider has is a ConfigError), the
// columns they set at start, and the CLI flags of `latchkey resource add|update` (an unknown id is an error exit),
// on both databases.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { applyDeclaredResourceServers } from '../../src/bootstrap.ts';
import { resourceCommands } from '../../src/cli/resources.ts';
import { runCli } from '../../src/cli/run.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { createStores } from '../../src/store/index.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';
import { tempDir } from '../helpers/server-process.ts';

const SECRET = 'x'.repeat(32);
const PROVIDERS = JSON.stringify([
  { id: 'plane', type: 'plane', client_id: 'c', client_secret: 's' },
  { id: 'github', type: 'github', client_id: 'c', client_secret: 's' },
]);
const KEYS = `k1:${Buffer.alloc(32, 7).toString('base64url')}`;

function entry(fields: Record<string, unknown>): string {
  return JSON.stringify([
    { uri: 'https://mcp.example.com/mcp', client_id: 'rs_1', client_secret: SECRET, ...fields },
  ]);
}

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('RESOURCE_SERVERS upstream fields', () => {
  test('C4: upstream_token or require_upstream naming an unknown provider stops the start', () => {
    for (const [fields, field, id] of [
      [{ upstream_token: ['plane', 'gitlab'] }, 'upstream_token', 'gitlab'],
      [{ require_upstream: 'corp' }, 'require_upstream', 'corp'],
    ] as const) {
      const err = configError({ UPSTREAM_PROVIDERS: PROVIDERS, RESOURCE_SERVERS: entry(fields) });
      assert.equal(err.variable, 'RESOURCE_SERVERS');
      assert.match(err.message, new RegExp(`entry 0: "${field}" names "${id}"`));
    }
    // No providers at all: any provider id is unknown.
    assert.equal(
      configError({ RESOURCE_SERVERS: entry({ upstream_token: ['plane'] }) }).variable,
      'RESOURCE_SERVERS',
    );
  });

  test('wrong types are ConfigErrors naming the field', () => {
    for (const [fields, field] of [
      [{ upstream_claims: 'yes' }, 'upstream_claims'],
      [{ upstream_token: 'plane' }, 'upstream_token'],
      [{ upstream_token: [1] }, 'upstream_token'],
      [{ require_upstream: '' }, 'require_upstream'],
    ] as const) {
      const err = configError({ UPSTREAM_PROVIDERS: PROVIDERS, RESOURCE_SERVERS: entry(fields) });
      assert.match(err.message, new RegExp(`"${field}"`));
    }
  });

  test('known ids are accepted; the defaults are no claims, no token, no required provider', () => {
    const c = loadConfig({
      UPSTREAM_PROVIDERS: PROVIDERS,
      RESOURCE_SERVERS: entry({
        upstream_claims: true,
        upstream_token: ['plane', 'plane'],
        require_upstream: 'plane',
      }),
    });
    assert.deepEqual(c.resourceServers[0], {
      uri: 'https://mcp.example.com/mcp',
      clientId: 'rs_1',
      clientSecret: SECRET,
      name: 'https://mcp.example.com/mcp',
      exposeUpstreamClaims: true,
      upstreamTokenProviders: ['plane'],
      requiredUpstreamProvider: 'plane',
    });
    const plain = loadConfig({ RESOURCE_SERVERS: entry({}) }).resourceServers[0]!;
    assert.equal(plain.exposeUpstreamClaims, false);
    assert.deepEqual(plain.upstreamTokenProviders, []);
    assert.equal(plain.requiredUpstreamProvider, null);
  });
});

forEachDatabase('resource server upstream access', (kind) => {
  let database: TestDatabase;
  let env: Record<string, string>;
  let removeDir: (() => Promise<void>) | undefined;

  before(async () => {
    if (kind === 'postgres') {
      database = await migratedDatabase(kind);
      env = { DATABASE_URL: database.url! };
    } else {
      // The CLI opens an embedded database in DATA_DIR itself.
      const dir = await tempDir('latchkey-rs-upstream-');
      removeDir = dir.remove;
      env = { DATA_DIR: `${dir.path}/data` };
    }
    Object.assign(env, {
      UPSTREAM_PROVIDERS: PROVIDERS,
      UPSTREAM_TOKEN_KEYS: KEYS,
      ISSUER: 'http://127.0.0.1:9',
    });
  });
  after(async () => {
    await database?.cleanup();
    await removeDir?.();
  });

  async function cli(...argv: string[]) {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (d) => (out += d));
    stderr.on('data', (d) => (err += d));
    const code = await runCli(argv, resourceCommands, { io: { stdin: process.stdin, stdout, stderr }, env });
    return { code, out, err };
  }

  test('resource add and update set, change and clear the upstream access; unknown ids are refused', async () => {
    const uri = 'https://plane-mcp.example.com/mcp';
    const unknown = await cli('resource', 'add', uri, '--upstream-token', 'gitlab');
    assert.equal(unknown.code, 2);
    assert.match(
      unknown.err,
      /--upstream-token gitlab: no such upstream provider \(configured: plane, github\)/,
    );

    const added = await cli('resource', 'add', uri, '--upstream-claims', '--upstream-token', 'plane');
    assert.equal(added.code, 0, added.err);
    let list = await cli('resource', 'list');
    assert.match(list.out, /claims,token:plane/);

    const updated = await cli(
      'resource',
      'update',
      uri,
      '--upstream-token',
      'plane',
      '--upstream-token',
      'github',
      '--require-upstream',
      'plane',
      '--no-upstream-claims',
    );
    assert.equal(updated.code, 0, updated.err);
    assert.match(updated.out, /^upstream_claims: false$/m);
    assert.match(updated.out, /^upstream_token: plane github$/m);
    assert.match(updated.out, /^require_upstream: plane$/m);
    assert.equal((await cli('resource', 'update', uri, '--require-upstream', 'corp')).code, 2);

    const cleared = await cli('resource', 'update', uri, '--no-upstream-token', '--no-require-upstream');
    assert.match(cleared.out, /^upstream_token: -$/m);
    assert.match(cleared.out, /^require_upstream: -$/m);
    list = await cli('resource', 'list');
    assert.match(list.out, new RegExp(`${uri.replace(/[.]/g, '\\.')}\\s.*\\s-\\s`));
    assert.equal((await cli('resource', 'update', uri)).code, 2, 'nothing to change');
    assert.equal(
      (await cli('resource', 'update', 'https://none.example.com/mcp', '--upstream-claims')).code,
      1,
    );
  });

  test('RESOURCE_SERVERS applies the fields at start, and removing them resets the columns', async () => {
    const db = kind === 'postgres' ? database : await migratedDatabase(kind);
    try {
      const stores = createStores(db.db);
      const declared = (fields: Record<string, unknown>) =>
        loadConfig({ UPSTREAM_PROVIDERS: PROVIDERS, RESOURCE_SERVERS: entry(fields) });
      await applyDeclaredResourceServers(
        stores,
        declared({ upstream_claims: true, upstream_token: ['github'], require_upstream: 'github' }),
      );
      let row = await stores.resourceServers.findByClientId('rs_1');
      assert.equal(row?.exposeUpstreamClaims, true);
      assert.deepEqual(row?.upstreamTokenProviders, ['github']);
      assert.equal(row?.requiredUpstreamProvider, 'github');
      await applyDeclaredResourceServers(stores, declared({}));
      row = await stores.resourceServers.findByClientId('rs_1');
      assert.equal(row?.exposeUpstreamClaims, false);
      assert.deepEqual(row?.upstreamTokenProviders, []);
      assert.equal(row?.requiredUpstreamProvider, null);
    } finally {
      if (db !== database) await db.cleanup();
    }
  });
});
