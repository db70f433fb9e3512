// The kit behind real listeners: the same behaviour through the Fastify and the Express adapter.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import {
  createIntrospectionVerifier,
  createProtectedResourceMetadata,
  expressAuthMiddleware,
  expressMetadataMiddleware,
  type LatchkeyRequest,
  latchkeyResourceServer,
  type ProtectedResourceMetadata,
  protectResource,
  type ResourceProtection,
} from '../../src/resource-server/index.ts';
import {
  type FakeIntrospection,
  RS_CLIENT_ID,
  RS_CLIENT_SECRET,
  startFakeIntrospection,
  type TokenClaims,
} from './fake-introspection.ts';

interface Kit {
  protection: ResourceProtection;
  metadata: ProtectedResourceMetadata;
}

interface Harness {
  origin: string;
  resource: string;
  close(): Promise<void>;
}

type Adapter = 'fastify' | 'express';

async function listen(): Promise<{ server: Server; origin: string }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, origin: `http://127.0.0.1:${port}` };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

// The resource URL contains the listener's port, so the server listens first and the app attaches after.
async function startProtected(adapter: Adapter, makeKit: (resource: string) => Kit): Promise<Harness> {
  const { server, origin } = await listen();
  const resource = `${origin}/mcp`;
  const { protection, metadata } = makeKit(resource);
  if (adapter === 'fastify') {
    const app = Fastify({
      serverFactory: (handler) => {
        server.on('request', handler);
        return server;
      },
    });
    await app.register(latchkeyResourceServer, { protection, metadata });
    app.post('/mcp', { preHandler: app.latchkeyProtect }, async (request) => ({
      auth: request.latchkeyAuth,
    }));
    app.get('/mcp', { onRequest: app.latchkeyProtect }, async (request) => ({ auth: request.latchkeyAuth }));
    await app.ready();
    const close = async () => {
      await app.close();
      await closeServer(server);
    };
    return { origin, resource, close };
  }
  const app = express();
  app.use(expressMetadataMiddleware(metadata));
  app.post('/mcp', expressAuthMiddleware(protection), (req, res) => {
    const { auth, latchkeyAuth } = req as LatchkeyRequest;
    res.json({ auth: latchkeyAuth, sdkAuth: { ...auth, resource: auth?.resource?.href } });
  });
  app.get('/mcp', expressAuthMiddleware(protection), (req, res) => {
    res.json({ auth: (req as LatchkeyRequest).latchkeyAuth });
  });
  server.on('request', app);
  return { origin, resource, close: () => closeServer(server) };
}

for (const adapter of ['fastify', 'express'] as const) {
  describe(`${adapter} adapter`, () => {
    let as: FakeIntrospection;
    let h: Harness;
    const nowSeconds = () => Math.floor(Date.now() / 1000);
    const token = (name: string) => `${adapter}-${name}`;
    const claims = (over: Partial<TokenClaims> = {}): TokenClaims => ({
      scope: 'mcp',
      client_id: 'client_1',
      sub: 'user_1',
      username: 'ada@example.com',
      aud: h.resource,
      iss: as.issuer,
      iat: nowSeconds(),
      exp: nowSeconds() + 3600,
      ...over,
    });
    const call = (authorization?: string) =>
      fetch(`${h.origin}/mcp`, {
        method: 'POST',
        headers: authorization === undefined ? {} : { authorization },
      });
    const metadataUrl = () => `${h.origin}/.well-known/oauth-protected-resource/mcp`;
    const challenge = (extra = '') => `Bearer resource_metadata="${metadataUrl()}", scope="mcp"${extra}`;

    before(async () => {
      as = await startFakeIntrospection();
      h = await startProtected(adapter, (resource) => ({
        protection: protectResource({
          resource,
          requiredScopes: ['mcp'],
          verifier: createIntrospectionVerifier({
            introspectionEndpoint: as.url,
            clientId: RS_CLIENT_ID,
            clientSecret: RS_CLIENT_SECRET,
          }),
        }),
        metadata: createProtectedResourceMetadata({ resource, issuer: as.issuer, scopesSupported: ['mcp'] }),
      }));
    });
    after(async () => {
      await h.close();
      await as.close();
    });

    it('lets an active token for this resource with the required scope through and exposes the caller', async () => {
      as.setToken(token('ok'), claims());
      const res = await call(`Bearer ${token('ok')}`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { auth: Record<string, unknown> };
      assert.equal(body.auth.sub, 'user_1');
      assert.equal(body.auth.username, 'ada@example.com');
      assert.equal(body.auth.clientId, 'client_1');
      assert.deepEqual(body.auth.scopes, ['mcp']);
      assert.equal(body.auth.resource, h.resource);
    });

    it('guards a route from the earliest hook too, before any body is read', async () => {
      as.setToken(token('get'), claims());
      assert.equal((await fetch(`${h.origin}/mcp`)).status, 401);
      const res = await fetch(`${h.origin}/mcp`, { headers: { authorization: `Bearer ${token('get')}` } });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { auth: { sub: string } }).auth.sub, 'user_1');
    });

    it('accepts the bearer scheme in any case (RFC 9110 §11.1)', async () => {
      as.setToken(token('case'), claims());
      assert.equal((await call(`bearer ${token('case')}`)).status, 200);
    });

    it('answers a request without a token with 401, an absolute resource_metadata and scope, but no error code (RFC 6750 §3.1)', async () => {
      const res = await call();
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), challenge());
      assert.equal(res.headers.get('cache-control'), 'no-store');
    });

    it('answers another authentication scheme like a missing token (RFC 6750 §3.1)', async () => {
      const res = await call('Basic dXNlcjpwYXNz');
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), challenge());
    });

    it('answers an unknown token with 401 invalid_token pointing at the metadata (RFC 6750 §3.1, RFC 9728 §5.1)', async () => {
      const res = await call('Bearer unknown-token');
      assert.equal(res.status, 401);
      assert.equal(
        res.headers.get('www-authenticate'),
        challenge(', error="invalid_token", error_description="token is not active"'),
      );
      assert.deepEqual(await res.json(), {
        error: 'invalid_token',
        error_description: 'token is not active',
      });
    });

    it('answers a revoked token with 401 invalid_token once introspection says inactive', async () => {
      as.setToken(token('revoked'), undefined);
      const res = await call(`Bearer ${token('revoked')}`);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    });

    it('answers a malformed bearer token with 401 invalid_token without calling introspection', async () => {
      const before = as.calls.length;
      const res = await call('Bearer not a token');
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
      assert.equal(as.calls.length, before);
    });

    it('answers a token bound to another resource with 401 invalid_token (RFC 8707 audience)', async () => {
      as.setToken(token('other-aud'), claims({ aud: 'https://other.example.com/mcp' }));
      const res = await call(`Bearer ${token('other-aud')}`);
      assert.equal(res.status, 401);
      assert.equal(
        res.headers.get('www-authenticate'),
        challenge(', error="invalid_token", error_description="token is not for this resource"'),
      );
    });

    it('accepts an audience that differs only in the case of scheme and host', async () => {
      as.setToken(
        token('aud-case'),
        claims({ aud: h.resource.replace('http://127.0.0.1', 'HTTP://127.0.0.1') }),
      );
      assert.equal((await call(`Bearer ${token('aud-case')}`)).status, 200);
    });

    it('answers a token without the required scope with 403 insufficient_scope naming it (RFC 6750 §3.1)', async () => {
      as.setToken(token('no-scope'), claims({ scope: 'profile' }));
      const res = await call(`Bearer ${token('no-scope')}`);
      assert.equal(res.status, 403);
      assert.equal(
        res.headers.get('www-authenticate'),
        challenge(', error="insufficient_scope", error_description="token lacks a required scope"'),
      );
    });

    it('answers 503 when introspection fails, and lets the token in once it recovers (nothing cached)', async () => {
      as.setToken(token('down'), claims());
      as.failWith(500);
      try {
        const res = await call(`Bearer ${token('down')}`);
        assert.equal(res.status, 503);
        assert.equal(res.headers.get('www-authenticate'), null);
        assert.equal(((await res.json()) as { error: string }).error, 'temporarily_unavailable');
      } finally {
        as.failWith(null);
      }
      assert.equal((await call(`Bearer ${token('down')}`)).status, 200);
    });

    it('serves protected resource metadata at the path-suffixed and the root well-known URL (RFC 9728 §3.1)', async () => {
      for (const url of [metadataUrl(), `${h.origin}/.well-known/oauth-protected-resource`]) {
        const res = await fetch(url);
        assert.equal(res.status, 200, url);
        assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
        assert.equal(res.headers.get('access-control-allow-origin'), '*');
        assert.deepEqual(await res.json(), {
          resource: h.resource,
          authorization_servers: [as.issuer],
          scopes_supported: ['mcp'],
          bearer_methods_supported: ['header'],
        });
      }
    });

    it('answers a CORS preflight for the metadata (browser clients send MCP-Protocol-Version)', async () => {
      const res = await fetch(metadataUrl(), {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example', 'access-control-request-headers': 'mcp-protocol-version' },
      });
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
    });

    it('serves no metadata for other resource paths', async () => {
      const res = await fetch(`${h.origin}/.well-known/oauth-protected-resource/other`);
      assert.equal(res.status, 404);
    });

    if (adapter === 'express') {
      it('sets req.auth in the MCP SDK AuthInfo shape', async () => {
        const c = claims();
        as.setToken(token('sdk'), c);
        const res = await call(`Bearer ${token('sdk')}`);
        const body = (await res.json()) as { sdkAuth: unknown };
        assert.deepEqual(body.sdkAuth, {
          token: token('sdk'),
          clientId: 'client_1',
          scopes: ['mcp'],
          expiresAt: c.exp,
          resource: h.resource,
          extra: { sub: 'user_1', username: 'ada@example.com', aud: h.resource, iss: as.issuer, iat: c.iat },
        });
      });
    }
  });
}
