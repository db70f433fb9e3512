// POST /register: OAuth 2.0 Dynamic Client Registration (RFC 7591), as Claude and the MCP SDK use it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashSecret } from '../../src/lib/crypto.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { exchangeCode, obtainCode } from '../helpers/flow.ts';
import { addResourceServer, addUser, startServer, type TestServer } from '../helpers/server.ts';

// Exactly what Claude sends (its 2026 registration request), byte for byte.
const CLAUDE_BODY =
  '{"redirect_uris":["https://claude.ai/api/mcp/auth_callback"],"token_endpoint_auth_method":"client_secret_post","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"Claude"}';

const INITIAL_ACCESS_TOKEN = 'iat-0123456789abcdef0123456789abcdef';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: Record<string, unknown>;
}

async function register(
  server: TestServer,
  body: unknown,
  options: { headers?: Record<string, string>; remoteAddress?: string } = {},
): Promise<Reply> {
  const res = await server.app.inject({
    method: 'POST',
    url: '/register',
    headers: { 'content-type': 'application/json', ...options.headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
    ...(options.remoteAddress && { remoteAddress: options.remoteAddress }),
  });
  return { status: res.statusCode, headers: res.headers, body: res.body ? res.json() : {} };
}

forEachDatabase('POST /register', (kind) => {
  let server: TestServer;
  const clientRows = () => server.database.db.prisma.client.count();

  before(async () => {
    server = await startServer(kind, { env: { REGISTRATION_RATE_LIMIT: '1000' } });
  });
  after(() => server.close());

  it("registers Claude's exact body and returns a client_secret for client_secret_post (RFC 7591 §3.2.1)", async () => {
    const r = await register(server, CLAUDE_BODY);
    assert.equal(r.status, 201);
    assert.equal(r.headers['cache-control'], 'no-store');
    const b = r.body;
    assert.equal(typeof b.client_id, 'string');
    assert.ok((b.client_id as string).length >= 22, 'at least 128 bits');
    assert.equal(b.client_id_issued_at, Math.floor(server.clock.now().getTime() / 1000));
    assert.equal(typeof b.client_secret, 'string');
    assert.ok((b.client_secret as string).length >= 43, 'at least 256 bits');
    assert.equal(b.client_secret_expires_at, 0);
    assert.equal(b.token_endpoint_auth_method, 'client_secret_post');
    assert.deepEqual(b.redirect_uris, ['https://claude.ai/api/mcp/auth_callback']);
    assert.deepEqual(b.grant_types, ['authorization_code', 'refresh_token']);
    assert.deepEqual(b.response_types, ['code']);
    assert.equal(b.client_name, 'Claude');

    const row = await server.stores.clients.findByClientId(b.client_id as string);
    assert.ok(row);
    assert.equal(row.kind, 'DYNAMIC');
    assert.equal(row.secretHash, hashSecret(b.client_secret as string));
    assert.ok(
      !JSON.stringify(row).includes(b.client_secret as string),
      'the secret is stored only as a hash',
    );
  });

  it("lets Claude's registration authorize and exchange a code with client_secret_post", async () => {
    const r = await register(server, CLAUDE_BODY);
    const rs = await addResourceServer(server.stores, 'https://mcp.example.com');
    const email = await addUser(server.stores);
    const client = {
      clientId: r.body.client_id as string,
      clientSecret: r.body.client_secret as string,
      redirectUri: 'https://claude.ai/api/mcp/auth_callback',
    };
    const code = await obtainCode(server, client, email, { resource: rs.uri });
    const token = await exchangeCode(server, client, code, { resource: rs.uri });
    assert.equal(token.status, 200, JSON.stringify(token.body));
    assert.equal(typeof token.body.access_token, 'string');
    const wrong = await exchangeCode(server, { ...client, clientSecret: 'not-the-secret' }, code);
    assert.equal(wrong.status, 401);
  });

  it('issues a secret for client_secret_basic too', async () => {
    const r = await register(server, {
      redirect_uris: ['https://app.example/cb'],
      token_endpoint_auth_method: 'client_secret_basic',
    });
    assert.equal(r.status, 201);
    assert.equal(r.body.token_endpoint_auth_method, 'client_secret_basic');
    assert.equal(typeof r.body.client_secret, 'string');
  });

  it('registers a public client (none) when no auth method is given, with no secret', async () => {
    const r = await register(server, {
      redirect_uris: ['http://localhost:33418/callback'],
      client_name: 'CLI',
    });
    assert.equal(r.status, 201);
    assert.equal(r.body.token_endpoint_auth_method, 'none');
    assert.equal(r.body.client_secret, undefined);
    assert.equal(r.body.client_secret_expires_at, undefined);
    assert.deepEqual(r.body.grant_types, ['authorization_code']);
    const row = await server.stores.clients.findByClientId(r.body.client_id as string);
    assert.equal(row?.tokenEndpointAuthMethod, 'none');
    assert.equal(row?.secretHash, null);
  });

  it('names a client after its redirect URI host when client_name is missing', async () => {
    const r = await register(server, { redirect_uris: ['https://app.example/cb'] });
    assert.equal(r.body.client_name, 'app.example');
  });

  it('ignores unknown fields, keeps only supported scopes, and never stores a client-sent secret (§2)', async () => {
    const r = await register(server, {
      redirect_uris: ['https://app.example/cb'],
      scope: 'mcp unknown:scope',
      software_id: 'abc',
      client_secret: 'chosen-by-client',
    });
    assert.equal(r.status, 201);
    assert.equal(r.body.scope, 'mcp');
    assert.equal(r.body.software_id, undefined);
    const row = await server.stores.clients.findByClientId(r.body.client_id as string);
    assert.ok(row);
    assert.equal((row.metadata as Record<string, unknown>).software_id, 'abc');
    assert.ok(!JSON.stringify(row).includes('chosen-by-client'));
  });

  describe('rejections answer 400 with a useful description and store nothing (RFC 7591 §3.2.2)', () => {
    const cases: [string, unknown, string, RegExp][] = [
      [
        'an http redirect URI on a non-loopback host',
        { redirect_uris: ['http://app.example/cb'] },
        'invalid_redirect_uri',
        /https/,
      ],
      [
        'a redirect URI with a fragment',
        { redirect_uris: ['https://app.example/cb#frag'] },
        'invalid_redirect_uri',
        /fragment/,
      ],
      ['a relative redirect URI', { redirect_uris: ['/cb'] }, 'invalid_redirect_uri', /absolute/],
      [
        'a wildcard redirect URI',
        { redirect_uris: ['https://*.app.example/cb'] },
        'invalid_redirect_uri',
        /wildcard/,
      ],
      [
        'a redirect URI with userinfo',
        { redirect_uris: ['https://u:p@app.example/cb'] },
        'invalid_redirect_uri',
        /credentials/,
      ],
      ['missing redirect_uris', { client_name: 'x' }, 'invalid_redirect_uri', /redirect_uris is required/],
      [
        'grant types without authorization_code',
        { redirect_uris: ['https://app.example/cb'], grant_types: ['refresh_token'] },
        'invalid_client_metadata',
        /must include authorization_code/,
      ],
      [
        'an unsupported grant type',
        { redirect_uris: ['https://app.example/cb'], grant_types: ['authorization_code', 'implicit'] },
        'invalid_client_metadata',
        /grant_types/,
      ],
      [
        'response types inconsistent with grant types (§2.1)',
        { redirect_uris: ['https://app.example/cb'], response_types: [] },
        'invalid_client_metadata',
        /inconsistent/,
      ],
      [
        'the token response type',
        { redirect_uris: ['https://app.example/cb'], response_types: ['token'] },
        'invalid_client_metadata',
        /only contain code/,
      ],
      [
        'an unsupported auth method',
        { redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'private_key_jwt' },
        'invalid_client_metadata',
        /token_endpoint_auth_method/,
      ],
      ['a JSON array body', '[]', 'invalid_client_metadata', /JSON object/],
    ];
    for (const [what, body, error, pattern] of cases) {
      it(`refuses ${what}`, async () => {
        const before = await clientRows();
        const r = await register(server, body);
        assert.equal(r.status, 400);
        assert.equal(r.body.error, error);
        assert.match(r.body.error_description as string, pattern);
        assert.equal(r.headers['cache-control'], 'no-store');
        assert.equal(await clientRows(), before);
      });
    }

    it('refuses a form-encoded body (§3.1 requires JSON)', async () => {
      const before = await clientRows();
      const res = await server.app.inject({
        method: 'POST',
        url: '/register',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'redirect_uris=https%3A%2F%2Fapp.example%2Fcb',
      });
      assert.equal(res.statusCode, 400);
      assert.equal(res.json().error, 'invalid_client_metadata');
      assert.equal(await clientRows(), before);
    });

    it('refuses a body that is not JSON', async () => {
      const before = await clientRows();
      const r = await register(server, '{"redirect_uris": [');
      assert.equal(r.status, 400);
      assert.equal(r.headers['cache-control'], 'no-store');
      assert.equal(await clientRows(), before);
    });
  });
});

forEachDatabase('POST /register policies', (kind) => {
  describe('with an initial access token (REGISTRATION_ACCESS_TOKEN, RFC 7591 §3)', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(kind, { env: { REGISTRATION_ACCESS_TOKEN: INITIAL_ACCESS_TOKEN } });
    });
    after(() => server.close());

    it('refuses a registration without the token with 401 invalid_token and stores nothing', async () => {
      const r = await register(server, CLAUDE_BODY);
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'invalid_token');
      assert.equal(r.headers['www-authenticate'], 'Bearer');
      assert.equal(await server.database.db.prisma.client.count(), 0);
    });

    it('refuses a wrong token with 401 invalid_token (RFC 6750 §3.1)', async () => {
      const r = await register(server, CLAUDE_BODY, { headers: { authorization: 'Bearer wrong-token' } });
      assert.equal(r.status, 401);
      assert.equal(r.body.error, 'invalid_token');
      assert.match(String(r.headers['www-authenticate']), /error="invalid_token"/);
      assert.equal(await server.database.db.prisma.client.count(), 0);
    });

    it('registers with the right token', async () => {
      const r = await register(server, CLAUDE_BODY, {
        headers: { authorization: `Bearer ${INITIAL_ACCESS_TOKEN}` },
      });
      assert.equal(r.status, 201);
    });
  });

  describe('rate limit per client address (REGISTRATION_RATE_LIMIT)', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(kind, { env: { REGISTRATION_RATE_LIMIT: '2' } });
    });
    after(() => server.close());

    it('answers 429 with Retry-After past the limit, per address, until the window ends', async () => {
      const from = { remoteAddress: '192.0.2.10' };
      assert.equal((await register(server, CLAUDE_BODY, from)).status, 201);
      assert.equal((await register(server, CLAUDE_BODY, from)).status, 201);
      const before = await server.database.db.prisma.client.count();
      const limited = await register(server, CLAUDE_BODY, from);
      assert.equal(limited.status, 429);
      assert.equal(limited.body.error, 'temporarily_unavailable');
      assert.equal(limited.headers['retry-after'], '3600');
      assert.equal(await server.database.db.prisma.client.count(), before);
      // Another address has its own budget.
      assert.equal((await register(server, CLAUDE_BODY, { remoteAddress: '192.0.2.11' })).status, 201);
      server.clock.advance(3600);
      assert.equal((await register(server, CLAUDE_BODY, from)).status, 201);
    });
  });

  describe('with ALLOWED_REDIRECT_URI_PATTERNS', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(kind, {
        env: { ALLOWED_REDIRECT_URI_PATTERNS: 'https://claude.ai/api/mcp/*,http://localhost/*' },
      });
    });
    after(() => server.close());

    it('registers a redirect URI the operator allows and refuses one it does not', async () => {
      assert.equal((await register(server, CLAUDE_BODY)).status, 201);
      const r = await register(server, { redirect_uris: ['https://evil.example/cb'] });
      assert.equal(r.status, 400);
      assert.equal(r.body.error, 'invalid_redirect_uri');
      assert.match(r.body.error_description as string, /policy/);
    });
  });

  describe('with ALLOW_DYNAMIC_REGISTRATION=false', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(kind, { env: { ALLOW_DYNAMIC_REGISTRATION: 'false' } });
    });
    after(() => server.close());

    it('has no /register endpoint (404) and stores nothing', async () => {
      const r = await register(server, CLAUDE_BODY);
      assert.equal(r.status, 404);
      assert.equal(await server.database.db.prisma.client.count(), 0);
    });
  });
});
