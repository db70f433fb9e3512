// Issue 5, acceptance 1, end to end with real listeners only: the official MCP SDK client meets the example MCP server
// (examples/mcp-server) with no token, follows its 401 to the protected resource metadata, discovers Latchkey,
// registers, signs in and approves over HTTP, and calls tools; a revoked token is refused on the next call and a
// refresh brings the client back; a token minted for another resource server is refused (RFC 8707).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, it } from 'node:test';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { extractWWWAuthenticateParams, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientMetadata } from '@modelcontextprotocol/sdk/shared/auth.js';
import { createMcpApp } from '../../examples/mcp-server/server.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { HeadlessProvider } from '../helpers/mcp-provider.ts';
import {
  addResourceServer,
  addUser,
  introspect,
  startServer,
  TEST_PASSWORD,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';

/** One HTTP exchange as the SDK client saw it on the wire. */
interface Exchange {
  method: string;
  url: string;
  status: number;
  requestHeaders: Headers;
  requestBody: string | undefined;
  responseHeaders: Headers;
  /** The response body, for JSON responses. */
  json: unknown;
}

type FetchFn = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** A fetch for the SDK that records every request and response it carries (the MCP endpoint and Latchkey alike). */
function recordingFetch(log: Exchange[]): FetchFn {
  return async (input, init) => {
    const url = input instanceof URL ? input.href : input;
    const res = await fetch(url, init);
    const body = init?.body;
    const json = (res.headers.get('content-type') ?? '').includes('json')
      ? await res
          .clone()
          .json()
          .catch(() => undefined)
      : undefined;
    log.push({
      method: (init?.method ?? 'GET').toUpperCase(),
      url,
      status: res.status,
      requestHeaders: new Headers(init?.headers),
      requestBody:
        typeof body === 'string' ? body : body instanceof URLSearchParams ? body.toString() : undefined,
      responseHeaders: res.headers,
      json,
    });
    return res;
  };
}

const http401 = (err: unknown) => err instanceof StreamableHTTPError && err.code === 401;

/** The example MCP server on its own listener, registered at Latchkey as a resource server. */
interface McpEndpoint {
  publicUrl: string;
  rs: TestResourceServer;
  logs: string[];
  close(): Promise<void>;
}

async function startMcpEndpoint(latchkey: TestServer, name: string): Promise<McpEndpoint> {
  // Listen first: the canonical resource URL, which Latchkey must know, contains the port.
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const publicUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`;
  const rs = await addResourceServer(latchkey.stores, publicUrl, name);
  const logs: string[] = [];
  const { app } = createMcpApp({
    publicUrl,
    issuer: latchkey.url,
    clientId: rs.clientId,
    clientSecret: rs.clientSecret,
    // Every request asks Latchkey, so a revocation shows on the very next call.
    cacheTtlSeconds: 0,
    log: (m) => logs.push(m),
  });
  server.on('request', app);
  return {
    publicUrl,
    rs,
    logs,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function newClient(): Client {
  return new Client({ name: 'latchkey-e2e', version: '0.0.0' });
}

interface SignedIn {
  client: Client;
  provider: HeadlessProvider;
  exchanges: Exchange[];
  /** What the second transport (the one that connected with a token) was built with, to build more alike. */
  transportOptions: { authProvider: OAuthClientProvider; fetch: FetchFn };
}

/**
 * What an MCP client application does: connect without a token; on UnauthorizedError (the SDK has discovered,
 * registered and sent the person to authorize) finish the authorization with the code, then connect again.
 */
async function connectWithSignIn(
  latchkey: TestServer,
  endpoint: McpEndpoint,
  email: string,
  clientMetadata: Partial<OAuthClientMetadata> = {},
): Promise<SignedIn> {
  const exchanges: Exchange[] = [];
  const provider = new HeadlessProvider({
    issuer: latchkey.url,
    email,
    password: TEST_PASSWORD,
    clientMetadata,
  });
  const transportOptions = { authProvider: provider, fetch: recordingFetch(exchanges) };
  const first = new StreamableHTTPClientTransport(new URL(endpoint.publicUrl), transportOptions);
  const firstClient = newClient();
  await assert.rejects(firstClient.connect(first), UnauthorizedError);
  assert.ok(provider.code, 'the person approved and Latchkey redirected back with a code');
  await first.finishAuth(provider.code);
  await firstClient.close();

  const client = newClient();
  await client.connect(new StreamableHTTPClientTransport(new URL(endpoint.publicUrl), transportOptions));
  return { client, provider, exchanges, transportOptions };
}

async function whoami(client: Client): Promise<Record<string, unknown>> {
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  assert.notEqual(result.isError, true);
  const [first] = result.content as { type: string; text: string }[];
  assert.equal(first?.type, 'text');
  return JSON.parse(first.text) as Record<string, unknown>;
}

/** Connects with a fixed Authorization header and no auth provider, so a 401 surfaces instead of a refresh. */
async function connectWithStaticToken(publicUrl: string, token: string, log: Exchange[]): Promise<Client> {
  const client = newClient();
  await client.connect(
    new StreamableHTTPClientTransport(new URL(publicUrl), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
      fetch: recordingFetch(log),
    }),
  );
  return client;
}

const isMcpPost = (endpoint: McpEndpoint) => (e: Exchange) =>
  e.method === 'POST' && e.url === endpoint.publicUrl;

forEachDatabase('the MCP SDK client and the example MCP server, with Latchkey in between', (kind) => {
  let latchkey: TestServer;
  let endpoint: McpEndpoint;
  let email: string;
  let userId: string;

  before(async () => {
    latchkey = await startServer(kind);
    email = await addUser(latchkey.stores);
    const user = await latchkey.stores.users.findByEmail(email);
    assert.ok(user);
    userId = user.id;
    endpoint = await startMcpEndpoint(latchkey, 'Example MCP server');
  });

  after(async () => {
    await endpoint?.close();
    await latchkey?.close();
  });

  it('connects with no token, follows the 401 to the metadata and Latchkey, registers, signs in, approves, and calls whoami as the signed-in user', async () => {
    const { client, provider, exchanges } = await connectWithSignIn(latchkey, endpoint, email);
    try {
      const metadataUrl = `${new URL(endpoint.publicUrl).origin}/.well-known/oauth-protected-resource/mcp`;

      // 1. The first request carries no token and is answered 401 with an absolute resource_metadata URL.
      const challenged = exchanges[0];
      assert.ok(challenged);
      assert.equal(challenged.method, 'POST');
      assert.equal(challenged.url, endpoint.publicUrl);
      assert.equal(challenged.requestHeaders.get('authorization'), null);
      assert.equal(challenged.status, 401);
      const wwwAuthenticate = challenged.responseHeaders.get('www-authenticate') ?? '';
      assert.match(wwwAuthenticate, /^Bearer /);
      assert.ok(wwwAuthenticate.includes(`resource_metadata="${metadataUrl}"`), wwwAuthenticate);
      const challenge = extractWWWAuthenticateParams(
        new Response(null, { headers: challenged.responseHeaders }),
      );
      assert.equal(challenge.resourceMetadataUrl?.href, metadataUrl);
      assert.equal(challenge.scope, 'mcp');
      assert.equal(challenge.error, undefined);

      // 2. The SDK followed it to the protected resource metadata, which names Latchkey.
      const prm = exchanges.find((e) => e.url === metadataUrl);
      assert.ok(prm, 'the SDK fetched the protected resource metadata named in the 401');
      assert.equal(prm.status, 200);
      assert.deepEqual(
        {
          resource: (prm.json as Record<string, unknown>).resource,
          authorization_servers: (prm.json as Record<string, unknown>).authorization_servers,
        },
        { resource: endpoint.publicUrl, authorization_servers: [latchkey.url] },
      );
      assert.ok(exchanges.indexOf(prm) > exchanges.indexOf(challenged));

      // 3. It discovered Latchkey's metadata and registered dynamically.
      const asMetadata = exchanges.find(
        (e) => e.url === `${latchkey.url}/.well-known/oauth-authorization-server` && e.status === 200,
      );
      assert.ok(asMetadata, 'the SDK read Latchkey’s authorization server metadata');
      assert.equal((asMetadata.json as Record<string, unknown>).issuer, latchkey.url);
      const registrations = exchanges.filter((e) => e.url === `${latchkey.url}/register`);
      const [registration] = registrations;
      assert.ok(registration && registrations.length === 1, 'the SDK registered exactly once');
      assert.equal(registration.status, 201);
      const clientId = provider.clientInformation()?.client_id;
      assert.ok(clientId);
      assert.equal((registration.json as Record<string, unknown>).client_id, clientId);

      // 4. The person was sent to Latchkey once, with PKCE and resource = the MCP server's URL, and came back
      //    with a code and Latchkey's iss (RFC 9207).
      assert.equal(provider.authorizationUrls.length, 1);
      const authorization = provider.authorizationUrls[0]!;
      assert.equal(`${authorization.origin}${authorization.pathname}`, `${latchkey.url}/authorize`);
      assert.equal(authorization.searchParams.get('resource'), endpoint.publicUrl);
      assert.equal(authorization.searchParams.get('client_id'), clientId);
      assert.equal(authorization.searchParams.get('code_challenge_method'), 'S256');
      assert.equal(authorization.searchParams.get('scope'), 'mcp');
      assert.equal(provider.lastCallback?.searchParams.get('iss'), latchkey.url);

      // 5. The code was exchanged with the same resource.
      const exchangesOfCode = exchanges.filter(
        (e) => e.url === `${latchkey.url}/token` && e.requestBody?.includes('grant_type=authorization_code'),
      );
      assert.equal(exchangesOfCode.length, 1);
      assert.equal(exchangesOfCode[0]?.status, 200);
      const tokenRequest = new URLSearchParams(exchangesOfCode[0]?.requestBody);
      assert.equal(tokenRequest.get('resource'), endpoint.publicUrl);
      const tokens = provider.tokens();
      assert.ok(tokens?.access_token && tokens.refresh_token);

      // 6. The reconnect carried the token and was served.
      const served = exchanges.filter(isMcpPost(endpoint)).slice(1);
      assert.ok(served.length > 0);
      for (const e of served) {
        assert.equal(e.requestHeaders.get('authorization'), `Bearer ${tokens.access_token}`);
        assert.ok(e.status === 200 || e.status === 202, `MCP POST answered ${e.status}`);
      }

      // 7. Tools are listed and called, as the person who signed in.
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['add', 'whoami']);
      const sum = await client.callTool({ name: 'add', arguments: { a: 20, b: 22 } });
      assert.deepEqual(sum.content, [{ type: 'text', text: '42' }]);
      const who = await whoami(client);
      assert.equal(who.username, email);
      assert.equal(who.sub, userId);
      assert.equal(who.clientId, clientId);
      assert.deepEqual(who.scopes, ['mcp']);

      // Latchkey bound the token to this MCP server.
      const answer = await introspect(latchkey.url, endpoint.rs, tokens.access_token);
      assert.equal(answer.active, true);
      assert.equal(answer.aud, endpoint.publicUrl);
      assert.equal(answer.sub, userId);
      assert.deepEqual(endpoint.logs, []);
    } finally {
      await client.close();
    }
  });

  for (const authMethod of ['none', 'client_secret_post'] as const) {
    it(`refuses the next tool call with 401 once the access token is revoked at /revoke, and works again after a refresh (${authMethod} client)`, async () => {
      const { client, provider, exchanges, transportOptions } = await connectWithSignIn(
        latchkey,
        endpoint,
        email,
        { token_endpoint_auth_method: authMethod },
      );
      const staticLog: Exchange[] = [];
      try {
        assert.equal((await whoami(client)).username, email);
        const info = provider.clientInformation();
        assert.ok(info);
        assert.equal(info.client_secret === undefined, authMethod === 'none');
        const revoked = provider.tokens();
        assert.ok(revoked?.access_token && revoked.refresh_token);

        // The client revokes its access token at Latchkey, authenticating as itself (RFC 7009 §2.1).
        const form = new URLSearchParams({
          token: revoked.access_token,
          token_type_hint: 'access_token',
          client_id: info.client_id,
        });
        if (info.client_secret) form.set('client_secret', info.client_secret);
        const revocation = await fetch(`${latchkey.url}/revoke`, { method: 'POST', body: form });
        assert.equal(revocation.status, 200);
        assert.equal((await introspect(latchkey.url, endpoint.rs, revoked.access_token)).active, false);

        // A client holding only the revoked token is refused with 401 on its next request.
        await assert.rejects(
          connectWithStaticToken(endpoint.publicUrl, revoked.access_token, staticLog),
          http401,
        );
        assert.equal(staticLog.length, 1);
        assert.equal(staticLog[0]?.status, 401);
        const refusal = extractWWWAuthenticateParams(
          new Response(null, { headers: staticLog[0]!.responseHeaders }),
        );
        assert.equal(refusal.error, 'invalid_token');
        assert.equal(
          refusal.resourceMetadataUrl?.href,
          `${new URL(endpoint.publicUrl).origin}/.well-known/oauth-protected-resource/mcp`,
        );

        // The SDK client's next tool call: 401 on the wire, a refresh_token grant, the call again, served.
        const mark = exchanges.length;
        const who = await whoami(client);
        assert.equal(who.username, email);
        assert.equal(who.sub, userId);
        const wire = exchanges.slice(mark);
        const posts = wire.filter(isMcpPost(endpoint));
        assert.equal(posts[0]?.status, 401);
        assert.equal(posts[0]?.requestHeaders.get('authorization'), `Bearer ${revoked.access_token}`);
        assert.equal(
          extractWWWAuthenticateParams(new Response(null, { headers: posts[0]!.responseHeaders })).error,
          'invalid_token',
        );
        const refreshes = wire.filter(
          (e) => e.url === `${latchkey.url}/token` && e.requestBody?.includes('grant_type=refresh_token'),
        );
        assert.equal(refreshes.length, 1);
        assert.equal(refreshes[0]?.status, 200);
        const refreshRequest = new URLSearchParams(refreshes[0]?.requestBody);
        assert.equal(refreshRequest.get('refresh_token'), revoked.refresh_token);
        assert.equal(refreshRequest.get('resource'), endpoint.publicUrl);
        assert.ok(wire.indexOf(refreshes[0]!) > wire.indexOf(posts[0]!));
        const fresh = provider.tokens();
        assert.ok(fresh?.access_token && fresh.refresh_token);
        assert.notEqual(fresh.access_token, revoked.access_token);
        assert.notEqual(fresh.refresh_token, revoked.refresh_token);
        assert.equal(posts.at(-1)?.status, 200);
        assert.equal(posts.at(-1)?.requestHeaders.get('authorization'), `Bearer ${fresh.access_token}`);
        // No new registration and no second trip to the person: the refresh alone restored access.
        assert.equal(provider.authorizationUrls.length, 1);
        assert.ok(!wire.some((e) => e.url === `${latchkey.url}/register`));

        // And it keeps working, with a fresh connection too.
        assert.equal((await introspect(latchkey.url, endpoint.rs, fresh.access_token)).active, true);
        const again = newClient();
        await again.connect(new StreamableHTTPClientTransport(new URL(endpoint.publicUrl), transportOptions));
        try {
          assert.equal((await whoami(again)).username, email);
        } finally {
          await again.close();
        }
        // The revoked token stays refused.
        await assert.rejects(connectWithStaticToken(endpoint.publicUrl, revoked.access_token, []), http401);
      } finally {
        await client.close();
      }
    });
  }

  it('refuses with 401 a token that Latchkey minted for a different MCP server (RFC 8707 audience binding)', async () => {
    const other = await startMcpEndpoint(latchkey, 'Another MCP server');
    const elsewhere = await connectWithSignIn(latchkey, other, email);
    try {
      // The token works where it was minted for...
      assert.equal(elsewhere.provider.authorizationUrls[0]?.searchParams.get('resource'), other.publicUrl);
      assert.equal((await whoami(elsewhere.client)).username, email);
      const token = elsewhere.provider.tokens()?.access_token;
      assert.ok(token);
      assert.equal((await introspect(latchkey.url, other.rs, token)).aud, other.publicUrl);

      // ...and is refused by the example MCP server it was not minted for.
      const log: Exchange[] = [];
      await assert.rejects(connectWithStaticToken(endpoint.publicUrl, token, log), http401);
      assert.equal(log.length, 1);
      const refusal = extractWWWAuthenticateParams(new Response(null, { headers: log[0]!.responseHeaders }));
      assert.equal(refusal.error, 'invalid_token');
      assert.equal(
        refusal.resourceMetadataUrl?.href,
        `${new URL(endpoint.publicUrl).origin}/.well-known/oauth-protected-resource/mcp`,
      );
      assert.deepEqual(await introspect(latchkey.url, endpoint.rs, token), { active: false });
      // Nothing about the refused token reaches the example's log.
      assert.ok(!endpoint.logs.some((l) => l.includes(token)));
    } finally {
      await elsewhere.client.close();
      await other.close();
    }
  });
});
