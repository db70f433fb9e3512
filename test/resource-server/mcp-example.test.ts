// The example MCP server (examples/mcp-server) driven by the official MCP SDK client over real HTTP.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createMcpApp, loadMcpServerConfig, type McpApp } from '../../examples/mcp-server/server.ts';
import {
  type FakeIntrospection,
  RS_CLIENT_ID,
  RS_CLIENT_SECRET,
  startFakeIntrospection,
} from './fake-introspection.ts';

const http401 = (err: unknown) => err instanceof StreamableHTTPError && err.code === 401;

const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } },
};

describe('example MCP server protected by the kit', () => {
  let as: FakeIntrospection;
  let server: Server;
  let mcp: McpApp;
  let publicUrl: string;
  const logs: string[] = [];
  const nowSeconds = () => Math.floor(Date.now() / 1000);

  function mint(token: string, over: Record<string, unknown> = {}) {
    as.setToken(token, {
      scope: 'mcp',
      client_id: 'https://claude.ai/oauth/mcp-oauth-client-metadata',
      sub: 'user_42',
      username: 'ada@example.com',
      aud: publicUrl,
      iss: as.issuer,
      iat: nowSeconds(),
      exp: nowSeconds() + 3600,
      ...over,
    });
  }

  async function connect(token?: string): Promise<Client> {
    const client = new Client({ name: 'latchkey-test', version: '0.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(publicUrl), {
      requestInit: token ? { headers: { Authorization: `Bearer ${token}` } } : {},
    });
    await client.connect(transport);
    return client;
  }

  before(async () => {
    as = await startFakeIntrospection();
    // Listen first: the canonical resource URL contains the port.
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    publicUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`;
    mcp = createMcpApp({
      publicUrl,
      issuer: as.issuer,
      introspectionUrl: as.url,
      clientId: RS_CLIENT_ID,
      clientSecret: RS_CLIENT_SECRET,
      cacheTtlSeconds: 0,
      log: (m) => logs.push(m),
    });
    server.on('request', mcp.app);
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await as.close();
  });

  it('lets the official SDK client with a valid token list the tools and call them', async () => {
    mint('tok-e2e');
    const client = await connect('tok-e2e');
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['add', 'whoami']);

      const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
      assert.deepEqual(sum.content, [{ type: 'text', text: '42' }]);

      const who = await client.callTool({ name: 'whoami', arguments: {} });
      const [first] = who.content as { type: string; text: string }[];
      const parsed = JSON.parse(first?.text ?? '{}') as Record<string, unknown>;
      assert.equal(parsed.sub, 'user_42');
      assert.equal(parsed.username, 'ada@example.com');
      assert.equal(parsed.clientId, 'https://claude.ai/oauth/mcp-oauth-client-metadata');
      assert.deepEqual(parsed.scopes, ['mcp']);
    } finally {
      await client.close();
    }
  });

  it('refuses the SDK client without a token', async () => {
    await assert.rejects(connect(), http401);
  });

  it('answers a request without a token with 401 whose WWW-Authenticate leads the SDK to the metadata and the issuer (RFC 9728 §5.1)', async () => {
    const res = await fetch(publicUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify(INITIALIZE),
    });
    assert.equal(res.status, 401);
    const { resourceMetadataUrl, scope, error } = extractWWWAuthenticateParams(res);
    assert.equal(
      resourceMetadataUrl?.href,
      `${new URL(publicUrl).origin}/.well-known/oauth-protected-resource/mcp`,
    );
    assert.equal(scope, 'mcp');
    assert.equal(error, undefined);
    const prm = await discoverOAuthProtectedResourceMetadata(publicUrl, { resourceMetadataUrl });
    assert.equal(prm.resource, publicUrl);
    assert.deepEqual(prm.authorization_servers, [as.issuer]);
  });

  it('lets the SDK discover the metadata from the server URL alone (RFC 9728 §3.1)', async () => {
    const prm = await discoverOAuthProtectedResourceMetadata(publicUrl);
    assert.equal(prm.resource, publicUrl);
    assert.deepEqual(prm.scopes_supported, ['mcp']);
  });

  it('refuses a token minted for another MCP server (RFC 8707)', async () => {
    mint('tok-elsewhere', { aud: 'https://elsewhere.example.com/mcp' });
    await assert.rejects(connect('tok-elsewhere'), http401);
  });

  it('answers a token without the mcp scope with 403 insufficient_scope', async () => {
    mint('tok-noscope', { scope: 'profile' });
    const res = await fetch(publicUrl, {
      method: 'POST',
      headers: {
        authorization: 'Bearer tok-noscope',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify(INITIALIZE),
    });
    assert.equal(res.status, 403);
    assert.equal(extractWWWAuthenticateParams(res).error, 'insufficient_scope');
  });

  it('sees a revocation on the next request when the cache is off', async () => {
    mint('tok-revoke');
    const client = await connect('tok-revoke');
    try {
      await client.listTools();
      as.setToken('tok-revoke', undefined);
      await assert.rejects(client.listTools(), http401);
    } finally {
      await client.close();
    }
  });

  it('answers 503 when Latchkey cannot be reached, and logs no token', async () => {
    mint('tok-outage-secret');
    as.failWith(502);
    try {
      const res = await fetch(publicUrl, {
        method: 'POST',
        headers: { authorization: 'Bearer tok-outage-secret', 'content-type': 'application/json' },
        body: JSON.stringify(INITIALIZE),
      });
      assert.equal(res.status, 503);
    } finally {
      as.failWith(null);
    }
    assert.ok(logs.some((l) => l.includes('introspection')));
    assert.ok(!logs.some((l) => l.includes('tok-')));
  });
});

describe('example MCP server configuration', () => {
  const creds = { INTROSPECTION_CLIENT_ID: 'rs_1', INTROSPECTION_CLIENT_SECRET: 's' };

  it('defaults to port 3001, http://localhost:3001/mcp and the issuer’s /introspect', () => {
    const c = loadMcpServerConfig({ ...creds, LATCHKEY_ISSUER: 'http://latchkey.test:3000/' });
    assert.equal(c.port, 3001);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.app.publicUrl, 'http://localhost:3001/mcp');
    assert.equal(c.app.issuer, 'http://latchkey.test:3000');
    assert.equal(c.app.introspectionUrl, 'http://latchkey.test:3000/introspect');
    assert.deepEqual(c.app.requiredScopes, ['mcp']);
  });

  it('takes an internal introspection URL apart from the public issuer, and the scopes to require', () => {
    const c = loadMcpServerConfig({
      ...creds,
      LATCHKEY_ISSUER: 'http://localhost:3000',
      LATCHKEY_INTROSPECTION_URL: 'http://latchkey:3000/introspect',
      REQUIRED_SCOPES: 'mcp, files:read',
      INTROSPECTION_CACHE_TTL: '0',
    });
    assert.equal(c.app.introspectionUrl, 'http://latchkey:3000/introspect');
    assert.deepEqual(c.app.requiredScopes, ['mcp', 'files:read']);
    assert.equal(c.app.cacheTtlSeconds, 0);
  });

  it('fails at start naming the variable that is missing or wrong', () => {
    assert.throws(() => loadMcpServerConfig({}), /INTROSPECTION_CLIENT_ID/);
    assert.throws(() => loadMcpServerConfig({ ...creds, MCP_PUBLIC_URL: 'mcp' }), /MCP_PUBLIC_URL/);
    assert.throws(() => loadMcpServerConfig({ ...creds, PORT: 'x' }), /PORT/);
    assert.throws(
      () => loadMcpServerConfig({ ...creds, INTROSPECTION_CACHE_TTL: '-1' }),
      /INTROSPECTION_CACHE_TTL/,
    );
  });
});
