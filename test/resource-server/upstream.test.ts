// The kit's upstream parts (spec federation §6.1, §6.2): `ActiveToken.upstream` read strictly from /introspect,
// `AuthInfo.extra.upstream` from both adapters, and createUpstreamTokenClient's RFC 8693 request and its answers,
// against a small real token endpoint on 127.0.0.1. (End to end with Latchkey: test/e2e/mcp-upstream.test.ts.)
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import formbody from '@fastify/formbody';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  createFastifyHook,
  createUpstreamTokenClient,
  IntrospectionError,
  parseIntrospectionResponse,
  type ResourceProtection,
  toAuthInfo,
  UpstreamTokenError,
} from '../../src/resource-server/index.ts';

const ACTIVE = {
  active: true,
  scope: 'mcp',
  client_id: 'c',
  sub: 'u',
  aud: 'https://mcp.example.com/mcp',
  iss: 'https://auth.example.com',
  exp: 2_000_000_000,
  iat: 1_900_000_000,
};
const UPSTREAM = {
  provider: 'plane',
  sub: 'p-1',
  email: 'john@example.com',
  email_verified: false,
  name: 'John Doe',
  claims: { workspace_slug: 'acme' },
};

describe('ActiveToken.upstream', () => {
  test('is read when present, frozen, and absent otherwise', () => {
    const t = parseIntrospectionResponse({ ...ACTIVE, upstream: UPSTREAM });
    assert.ok(t.active);
    assert.deepEqual(t.upstream, UPSTREAM);
    assert.ok(Object.isFrozen(t.upstream) && Object.isFrozen(t.upstream?.claims));
    const plain = parseIntrospectionResponse(ACTIVE);
    assert.ok(plain.active);
    assert.equal(plain.upstream, undefined);
  });

  test('a malformed member is an IntrospectionError, never a silent pass', () => {
    for (const bad of [
      'plane',
      { ...UPSTREAM, provider: 1 },
      { ...UPSTREAM, sub: '' },
      { ...UPSTREAM, email_verified: 'false' },
      { ...UPSTREAM, claims: [] },
      { ...UPSTREAM, email: 7 },
    ]) {
      assert.throws(() => parseIntrospectionResponse({ ...ACTIVE, upstream: bad }), IntrospectionError);
    }
  });

  test('both adapters hand it to MCP tools as AuthInfo.extra.upstream', async () => {
    const token = parseIntrospectionResponse({ ...ACTIVE, upstream: UPSTREAM });
    assert.ok(token.active);
    const { active: _, ...rest } = token;
    const auth = { ...rest, token: 'tok', resource: ACTIVE.aud };
    assert.deepEqual(toAuthInfo(auth).extra?.upstream, UPSTREAM);

    const protection: ResourceProtection = {
      resource: ACTIVE.aud,
      resourceMetadataUrl: 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp',
      requiredScopes: [],
      authenticate: async () => ({ ok: true, auth }),
    };
    const raw = {} as IncomingMessage & { auth?: AuthInfo };
    const request = { headers: { authorization: 'Bearer tok' }, raw } as unknown as Parameters<
      ReturnType<typeof createFastifyHook>
    >[0];
    await createFastifyHook(protection)(request, {} as never);
    assert.deepEqual(raw.auth?.extra?.upstream, UPSTREAM);
  });
});

describe('createUpstreamTokenClient', () => {
  let app: FastifyInstance;
  let url: string;
  const seen: { headers: Record<string, unknown>; body: Record<string, string> }[] = [];
  let answer: { status: number; body: unknown; headers?: Record<string, string> } = { status: 200, body: {} };

  before(async () => {
    app = Fastify({ logger: false });
    await app.register(formbody);
    app.post('/token', async (request, reply) => {
      seen.push({ headers: request.headers, body: { ...(request.body as Record<string, string>) } });
      return reply
        .code(answer.status)
        .headers(answer.headers ?? {})
        .send(answer.body);
    });
    url = `${await app.listen({ port: 0, host: '127.0.0.1' })}/token`;
  });
  after(() => app.close());

  test('sends the RFC 8693 request with Basic credentials and reads the answer', async () => {
    answer = {
      status: 200,
      body: {
        access_token: 'upstream-token',
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        token_type: 'Bearer',
        expires_in: 120,
        scope: 'read write',
      },
    };
    const client = createUpstreamTokenClient({
      tokenEndpoint: url,
      clientId: 'rs_1',
      clientSecret: 's e:cret',
    });
    const before = Date.now();
    const t = await client.get('lk_at_abc', { audience: 'plane' });
    assert.equal(t.accessToken, 'upstream-token');
    assert.deepEqual(t.scopes, ['read', 'write']);
    assert.ok(t.expiresAt && t.expiresAt.getTime() >= before + 119_000);
    const sent = seen.at(-1)!;
    assert.deepEqual(sent.body, {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'lk_at_abc',
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      audience: 'plane',
    });
    assert.equal(sent.headers.authorization, `Basic ${Buffer.from('rs_1:s+e%3Acret').toString('base64')}`);

    answer = { status: 200, body: { access_token: 'gho_x', token_type: 'Bearer' } };
    const post = createUpstreamTokenClient({
      tokenEndpoint: url,
      clientId: 'rs_1',
      clientSecret: 'x',
      authMethod: 'client_secret_post',
    });
    const noExpiry = await post.get('lk_at_abc');
    assert.equal(noExpiry.expiresAt, undefined);
    assert.equal(seen.at(-1)!.body.client_secret, 'x');
    assert.equal(seen.at(-1)!.body.audience, undefined);
  });

  test('refusals become UpstreamTokenError with the OAuth error and Retry-After', async () => {
    const client = createUpstreamTokenClient({ tokenEndpoint: url, clientId: 'rs_1', clientSecret: 's' });
    const cases: [typeof answer, string, number | undefined][] = [
      [
        { status: 400, body: { error: 'invalid_grant', error_description: 'sign in again' } },
        'invalid_grant',
        undefined,
      ],
      [
        { status: 503, body: { error: 'temporarily_unavailable' }, headers: { 'retry-after': '5' } },
        'temporarily_unavailable',
        5,
      ],
      [{ status: 500, body: 'not json' }, 'server_error', undefined],
      [{ status: 200, body: { token_type: 'Bearer' } }, 'server_error', undefined],
    ];
    for (const [a, error, retryAfter] of cases) {
      answer = a;
      await assert.rejects(client.get('lk_at_abc'), (e: unknown) => {
        assert.ok(e instanceof UpstreamTokenError);
        assert.equal(e.error, error);
        assert.equal(e.retryAfter, retryAfter);
        return true;
      });
    }
    const unreachable = createUpstreamTokenClient({
      tokenEndpoint: 'http://127.0.0.1:9/token',
      clientId: 'rs_1',
      clientSecret: 's',
    });
    await assert.rejects(unreachable.get('lk_at_abc'), (e: unknown) => {
      return e instanceof UpstreamTokenError && e.error === 'temporarily_unavailable';
    });
    assert.throws(() =>
      createUpstreamTokenClient({ tokenEndpoint: 'ftp://x', clientId: 'a', clientSecret: 'b' }),
    );
  });
});

describe('the example server’s Plane settings', () => {
  test('PLANE_API_URL enables plane_me; LATCHKEY_TOKEN_URL defaults to the issuer’s /token', async () => {
    const { ConfigError, loadMcpServerConfig } = await import('../../examples/mcp-server/server.ts');
    const base = {
      INTROSPECTION_CLIENT_ID: 'rs_1',
      INTROSPECTION_CLIENT_SECRET: 's',
      LATCHKEY_ISSUER: 'https://auth.example.com',
    };
    const off = loadMcpServerConfig(base);
    assert.equal(off.app.plane, undefined);
    assert.equal(off.app.tokenUrl, 'https://auth.example.com/token');
    const on = loadMcpServerConfig({
      ...base,
      PLANE_API_URL: 'https://api.plane.so',
      PLANE_PROVIDER_ID: 'plane-acme',
    });
    assert.deepEqual(on.app.plane, { apiUrl: 'https://api.plane.so', provider: 'plane-acme' });
    assert.throws(() => loadMcpServerConfig({ ...base, PLANE_API_URL: 'api.plane.so' }), ConfigError);
  });
});
