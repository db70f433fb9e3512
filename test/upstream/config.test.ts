// Upstream configuration: spec federation §11 C1, C2, C3 and C5 (C4 is the resource servers' part).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import { runCli } from '../../src/cli/run.ts';
import { upstreamCommands } from '../../src/cli/upstream.ts';
import { userCommands } from '../../src/cli/users.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { openEmbedded } from '../../src/db/embedded.ts';
import { KEY_FILE, parseUpstreamTokenKeys, resolveUpstreamKeys } from '../../src/upstream/config.ts';
import { upstreamCipher } from '../../src/upstream/crypto.ts';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { captureLogs, startFederated, TEST_KEY_K1, TEST_KEY_K2 } from '../helpers/federation.ts';

const GOOD = {
  id: 'corp',
  type: 'oidc',
  name: 'Corp',
  issuer: 'https://sso.example.com',
  client_id: 'a',
  client_secret: 'b',
};

function load(env: Record<string, string>) {
  return loadConfig({ ISSUER: 'https://auth.example.com', ...env });
}

function providersError(value: unknown, env: Record<string, string> = {}): string {
  try {
    load({ UPSTREAM_PROVIDERS: typeof value === 'string' ? value : JSON.stringify(value), ...env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /UPSTREAM_PROVIDERS/);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe('C1: UPSTREAM_PROVIDERS errors name the variable, the entry and the field', () => {
  const cases: [string, unknown, RegExp][] = [
    ['not JSON', '[{', /must be JSON/],
    ['not an array', { id: 'x' }, /must be a JSON array/],
    ['duplicate id', [GOOD, GOOD], /entry 1, field "id": "corp" is used twice/],
    ['bad id', [{ ...GOOD, id: 'Corp!' }], /entry 0, field "id": must match/],
    ['unknown type', [{ ...GOOD, type: 'saml' }], /entry 0, field "type": must be one of/],
    ['unknown field (typo)', [{ ...GOOD, clientid: 'x' }], /entry 0, field "clientid": is not a known field/],
    [
      'required field missing',
      [{ ...GOOD, client_id: undefined }],
      /entry 0, field "client_id": is required/,
    ],
    ['name missing for oidc', [{ ...GOOD, name: undefined }], /entry 0, field "name": is required/],
    ['client_secret missing', [{ ...GOOD, client_secret: undefined }], /field "client_secret": is required/],
    [
      'issuer not https',
      [{ ...GOOD, issuer: 'http://sso.example.com' }],
      /field "issuer": must be an https URL/,
    ],
    [
      'loopback http without the flag',
      [{ ...GOOD, issuer: 'http://127.0.0.1:9000' }],
      /field "issuer": http needs UPSTREAM_ALLOW_INSECURE_LOOPBACK=true/,
    ],
    [
      'a fragment',
      [{ ...GOOD, issuer: 'https://sso.example.com/#x' }],
      /field "issuer": must not have a fragment/,
    ],
    [
      'credentials',
      [{ ...GOOD, issuer: 'https://u:p@sso.example.com' }],
      /field "issuer": must not carry credentials/,
    ],
    [
      'reserved authorize parameter',
      [{ ...GOOD, extra_authorize_params: { redirect_uri: 'https://evil.example' } }],
      /field "extra_authorize_params": may not set "redirect_uri"/,
    ],
    [
      'create_users without an allow-list',
      [{ ...GOOD, create_users: true }],
      /entry 0, field "create_users": needs an allow-list/,
    ],
    [
      'allowed_workspaces on a non-Plane provider',
      [{ ...GOOD, allowed_workspaces: ['acme'] }],
      /field "allowed_workspaces": is not a field of type "oidc"/,
    ],
    [
      'oauth2 without userinfo',
      [
        {
          ...GOOD,
          type: 'oauth2',
          issuer: undefined,
          authorization_endpoint: 'https://a.example/auth',
          token_endpoint: 'https://a.example/token',
        },
      ],
      /field "userinfo_endpoint": is required/,
    ],
  ];
  for (const [name, value, pattern] of cases) {
    test(name, () => assert.match(providersError(value), pattern));
  }

  test('both UPSTREAM_PROVIDERS and UPSTREAM_PROVIDERS_FILE → an error', () => {
    assert.match(providersError([GOOD], { UPSTREAM_PROVIDERS_FILE: '/nonexistent' }), /not both/);
  });

  test('a valid list: presets get their defaults; loopback http with the flag', () => {
    const config = load({
      UPSTREAM_PROVIDERS: JSON.stringify([
        {
          id: 'plane',
          type: 'plane',
          client_id: 'p',
          client_secret: 's',
          base_url: 'https://plane.example.com/',
          allowed_workspaces: ['acme'],
          create_users: true,
        },
        { id: 'gh', type: 'github', client_id: 'g', client_secret: 's' },
        { id: 'g', type: 'google', client_id: 'g', client_secret: 's', hosted_domain: 'Example.com' },
        { ...GOOD, issuer: 'http://127.0.0.1:9000/realms/corp/' },
      ]),
      UPSTREAM_ALLOW_INSECURE_LOOPBACK: 'true',
      UPSTREAM_TOKEN_KEYS: TEST_KEY_K1,
    });
    const [plane, gh, google, corp] = config.upstreamProviders;
    assert.equal(plane?.name, 'Plane');
    assert.deepEqual(plane?.scopes, ['read', 'write']);
    assert.equal(plane?.tokenEndpointAuthMethod, 'client_secret_post');
    assert.equal(plane?.type === 'plane' && plane.internalBaseUrl, 'https://plane.example.com');
    assert.deepEqual(gh?.scopes, ['read:user', 'user:email']);
    assert.equal(google?.type === 'google' && google.issuer, 'https://accounts.google.com');
    assert.deepEqual(google?.extraAuthorizeParams, {
      access_type: 'offline',
      prompt: 'consent',
      hd: 'example.com',
    });
    assert.equal(corp?.type === 'oidc' && corp.issuer, 'http://127.0.0.1:9000/realms/corp/');
    assert.equal(config.upstreamHttpTimeout, 10);
    assert.equal(config.passwordSignIn, true);
  });
});

describe('C2: UPSTREAM_TOKEN_KEYS', () => {
  const providers = JSON.stringify([GOOD]);
  const keyError = (keys: string) => {
    assert.throws(
      () => load({ UPSTREAM_PROVIDERS: providers, UPSTREAM_TOKEN_KEYS: keys }),
      (err: unknown) => err instanceof ConfigError && err.variable === 'UPSTREAM_TOKEN_KEYS',
    );
  };
  test('a key not of 32 bytes, a duplicate kid, a bad kid → ConfigError', () => {
    keyError(`k1:${Buffer.alloc(31).toString('base64url')}`);
    keyError(`k1:${Buffer.alloc(33).toString('base64url')}`);
    keyError(`${TEST_KEY_K1},${TEST_KEY_K1}`);
    keyError(`bad kid!:${Buffer.alloc(32).toString('base64url')}`);
    keyError('k1');
  });

  test('unset with DATABASE_URL and providers → ConfigError', () => {
    assert.throws(
      () => load({ UPSTREAM_PROVIDERS: providers, DATABASE_URL: 'postgres://127.0.0.1/x' }),
      /UPSTREAM_TOKEN_KEYS: required when UPSTREAM_PROVIDERS is set and DATABASE_URL is used/,
    );
  });

  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  test('unset with the embedded database: DATA_DIR/upstream-token-keys, mode 0600, reused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'latchkey-keys-'));
    dirs.push(dir);
    const config = load({ UPSTREAM_PROVIDERS: providers, DATA_DIR: join(dir, 'data') });
    assert.equal(config.upstreamTokenKeys, undefined);
    const first = resolveUpstreamKeys(config, new Date('2026-12-01T10:00:00Z'));
    assert.equal(first.length, 1);
    assert.equal(first[0]?.kid, 'gen-20261201');
    assert.equal(first[0]?.key.length, 32);
    const info = await stat(join(dir, 'data', KEY_FILE));
    assert.equal(info.mode & 0o777, 0o600);
    const again = resolveUpstreamKeys(config, new Date('2027-01-01T00:00:00Z'));
    assert.equal(again[0]?.kid, 'gen-20261201');
    assert.deepEqual(again[0]?.key, first[0]?.key);
    assert.deepEqual(resolveUpstreamKeys({ ...config, upstreamProviders: [] }), []);
  });
});

describe('C3: PASSWORD_SIGN_IN', () => {
  test('false with no provider → ConfigError', () => {
    assert.throws(
      () => load({ PASSWORD_SIGN_IN: 'false' }),
      /PASSWORD_SIGN_IN: false needs UPSTREAM_PROVIDERS/,
    );
  });
});

forEachDatabase('C3/C5: the sign-in page without passwords, and the start lines', (kind) => {
  test('PASSWORD_SIGN_IN=false: no password form, POST /login → 404; one start line per provider', async () => {
    const logs = captureLogs();
    const server = await startFederated(kind, {
      logger: logs.logger,
      env: { PASSWORD_SIGN_IN: 'false' },
      providers: () => [GOOD, { ...GOOD, id: 'other', name: 'Other' }],
    });
    try {
      const browser = new FormBrowser(server.url);
      const page = await browser.request('/login');
      assert.equal(page.status, 200);
      assert.doesNotMatch(page.html, /name="password"/);
      assert.match(page.html, /Sign in with Corp/);
      assert.match(page.html, /Sign in with Other/);
      const post = await fetch(`${server.url}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'email=a%40example.com&password=x',
      });
      assert.equal(post.status, 404);
      assert.match(post.headers.get('content-type') ?? '', /json/);
      const lines = logs.parsed().filter((l) => l.msg === 'upstream provider configured');
      assert.deepEqual(
        lines.map((l) => [l.provider, l.type, l.redirect_uri]),
        [
          ['corp', 'oidc', `${server.url}/login/upstream/corp/callback`],
          ['other', 'oidc', `${server.url}/login/upstream/other/callback`],
        ],
      );
      assert.ok(
        logs.parsed().some((l) => l.level === 40 && /UPSTREAM_ALLOW_INSECURE_LOOPBACK/.test(String(l.msg))),
      );
    } finally {
      await server.close();
    }
  });
});

describe('C5: latchkey upstream list', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  async function cli(argv: string[], env: Record<string, string>, input = '') {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const stdin = new PassThrough();
    stdin.end(input);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on('data', (c: Buffer) => out.push(c));
    stderr.on('data', (c: Buffer) => err.push(c));
    // src/cli.ts runs itself when imported: the command table is assembled here from its parts.
    const code = await runCli(argv, [...userCommands, ...upstreamCommands], {
      env,
      io: { stdin: stdin as unknown as NodeJS.ReadStream, stdout, stderr },
    });
    return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  }

  test('prints each provider’s exact redirect URI and identity count; link and unlink', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'latchkey-upstream-cli-'));
    dirs.push(dir);
    const env = {
      ISSUER: 'https://auth.example.com',
      DATA_DIR: join(dir, 'data'),
      UPSTREAM_PROVIDERS: JSON.stringify([GOOD]),
      LOG_LEVEL: 'silent',
    };
    const list = await cli(['upstream', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      /corp\s+oidc\s+Corp\s+https:\/\/auth\.example\.com\/login\/upstream\/corp\/callback\s+0/,
    );
    assert.equal(
      (await cli(['user', 'add', 'op@example.com', '--password-stdin'], env, 'a long enough password\n'))
        .code,
      0,
    );
    const linked = await cli(['upstream', 'link', 'op@example.com', 'corp', 'sub-1'], env);
    assert.equal(linked.code, 0, linked.stderr);
    assert.match((await cli(['upstream', 'list'], env)).stdout, /callback\s+1/);
    assert.equal((await cli(['upstream', 'link', 'op@example.com', 'corp', 'sub-2'], env)).code, 1);
    assert.equal((await cli(['upstream', 'link', 'op@example.com', 'nope', 'sub-2'], env)).code, 1);
    const unlinked = await cli(['upstream', 'unlink', 'op@example.com', 'corp'], env);
    assert.equal(unlinked.code, 0, unlinked.stderr);
    assert.match(unlinked.stdout, /0 grant\(s\) revoked/);
    assert.equal((await cli(['upstream', 'unlink', 'op@example.com', 'corp'], env)).code, 1);
  });

  test('upstream rekey moves every stored sign-in to the first key; list shows the count per key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'latchkey-rekey-'));
    dirs.push(dir);
    const env = {
      ISSUER: 'https://auth.example.com',
      DATA_DIR: join(dir, 'data'),
      UPSTREAM_PROVIDERS: JSON.stringify([GOOD]),
      UPSTREAM_TOKEN_KEYS: TEST_KEY_K1,
      LOG_LEVEL: 'silent',
    };
    assert.equal(
      (await cli(['user', 'add', 'rk@example.com', '--password-stdin'], env, 'a long enough password\n'))
        .code,
      0,
    );
    // A sign-in stored under k1, as the callback stores it.
    const k1 = upstreamCipher(parseUpstreamTokenKeys(TEST_KEY_K1)!);
    const db = await openEmbedded({ dataDir: env.DATA_DIR });
    const id = randomUUID();
    const slot = (column: 'access_token_enc' | 'refresh_token_enc') =>
      ({ table: 'upstream_logins', column, rowId: id }) as const;
    try {
      const user = await db.prisma.user.findUniqueOrThrow({ where: { email: 'rk@example.com' } });
      const identity = await db.prisma.upstreamIdentity.create({
        data: { userId: user.id, provider: 'corp', subject: 'rk' },
      });
      await db.prisma.upstreamLogin.create({
        data: {
          id,
          identityId: identity.id,
          provider: 'corp',
          scopes: [],
          claims: {},
          keyId: 'k1',
          accessTokenEnc: k1.encrypt('upstream-access', slot('access_token_enc')),
          refreshTokenEnc: k1.encrypt('upstream-refresh', slot('refresh_token_enc')),
        },
      });
    } finally {
      await db.close();
    }
    const rotated = { ...env, UPSTREAM_TOKEN_KEYS: `${TEST_KEY_K2},${TEST_KEY_K1}` };
    assert.match((await cli(['upstream', 'list'], rotated)).stdout, /corp\s+k1\s+1/);
    const rekey = await cli(['upstream', 'rekey'], rotated);
    assert.equal(rekey.code, 0, rekey.stderr);
    assert.match(rekey.stdout, /re-encrypted 1 upstream sign-in\(s\) under key k2/);
    assert.match((await cli(['upstream', 'list'], rotated)).stdout, /corp\s+k2\s+1/);
    // Only k2 now: the row decrypts with it alone.
    const k2 = upstreamCipher(parseUpstreamTokenKeys(TEST_KEY_K2)!);
    const reopened = await openEmbedded({ dataDir: env.DATA_DIR });
    try {
      const row = await reopened.prisma.upstreamLogin.findUniqueOrThrow({ where: { id } });
      assert.equal(row.keyId, 'k2');
      assert.equal(k2.decrypt(row.accessTokenEnc, slot('access_token_enc')), 'upstream-access');
      assert.equal(k2.decrypt(row.refreshTokenEnc!, slot('refresh_token_enc')), 'upstream-refresh');
    } finally {
      await reopened.close();
    }
    // Without the key the rows are under, rekey says which key is missing.
    const lost = await cli(['upstream', 'rekey'], { ...env, UPSTREAM_TOKEN_KEYS: TEST_KEY_K1 });
    assert.equal(lost.code, 1);
    assert.match(lost.stderr, /could not decrypt 1 under "k2"/);
  });
});
