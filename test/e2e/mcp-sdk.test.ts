// The official MCP TypeScript SDK's auth() drives discovery (protected resource metadata → authorization server
// metadata), authorization with PKCE and `resource`, the code exchange and a refresh against a real listener.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import type { FastifyInstance } from 'fastify';
import { forEachDatabase } from '../helpers/db.ts';
import { HeadlessProvider } from '../helpers/mcp-provider.ts';
import { protectedResource } from '../helpers/protected-resource.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  introspect,
  startServer,
  TEST_PASSWORD,
  type TestServer,
} from '../helpers/server.ts';

forEachDatabase('MCP SDK client against Latchkey', (kind) => {
  let server: TestServer;
  let resource: { app: FastifyInstance; url: string };
  let email: string;

  before(async () => {
    server = await startServer(kind);
    resource = await protectedResource(server.url);
    email = await addUser(server.stores);
  });
  after(async () => {
    await resource.app.close();
    await server.close();
  });

  it('completes discovery, authorization, code exchange and a refresh with a pre-registered client', async () => {
    const rs = await addResourceServer(server.stores, resource.url);
    const client = await addClient(server.stores, { redirectUris: ['http://127.0.0.1:8976/callback'] });
    const provider = new HeadlessProvider({
      issuer: server.url,
      email,
      password: TEST_PASSWORD,
      clientInformation: { client_id: client.clientId },
    });

    assert.equal(await auth(provider, { serverUrl: resource.url }), 'REDIRECT');
    const authorizationUrl = provider.authorizationUrls[0]!;
    assert.equal(authorizationUrl.searchParams.get('resource'), resource.url);
    assert.equal(authorizationUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(provider.lastCallback?.searchParams.get('iss'), server.url);
    assert.ok(provider.code);

    assert.equal(
      await auth(provider, { serverUrl: resource.url, authorizationCode: provider.code }),
      'AUTHORIZED',
    );
    const first = provider.tokens();
    assert.ok(first?.access_token && first.refresh_token);
    assert.equal((await introspect(server.url, rs, first.access_token)).active, true);

    // With a refresh token saved, auth() refreshes instead of redirecting.
    assert.equal(await auth(provider, { serverUrl: resource.url }), 'AUTHORIZED');
    const second = provider.tokens();
    assert.ok(second?.access_token);
    assert.notEqual(second.access_token, first.access_token);
    assert.notEqual(second.refresh_token, first.refresh_token);
    assert.equal(provider.authorizationUrls.length, 1);
    assert.equal((await introspect(server.url, rs, second.access_token)).active, true);
  });
});
