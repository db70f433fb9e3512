// Issue 9, acceptance 1, end to end with real listeners only: the official MCP SDK client meets the example MCP
// server with no token, discovers Latchkey, registers (DCR), is sent to sign in — the resource requires Plane, so
// the sign-in page offers only Plane — signs in at the Plane stand-in, approves on Latchkey's consent page, and calls
// `plane_me`, whose handler exchanges the Latchkey token for the person's Plane token (RFC 8693) and calls the Plane
// stand-in's API with it. The MCP client never sees a Plane token.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, it } from 'node:test';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createMcpApp } from '../../examples/mcp-server/server.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { allowUpstream } from '../helpers/federated-grants.ts';
import { callbackUri, startFederated } from '../helpers/federation.ts';
import { HeadlessProvider } from '../helpers/mcp-provider.ts';
import { PlaneStandin } from '../helpers/plane-standin.ts';
import { addResourceServer, freePort, type TestResourceServer, type TestServer } from '../helpers/server.ts';

function text(result: Awaited<ReturnType<Client['callTool']>>): string {
  const [first] = result.content as { type: string; text: string }[];
  assert.equal(first?.type, 'text');
  return first.text;
}

forEachDatabase('MCP SDK client → example server → Latchkey → Plane', (kind) => {
  let plane: PlaneStandin;
  let latchkey: TestServer;
  let mcp: Server;
  let publicUrl: string;
  let rs: TestResourceServer;
  const seen: { url: string; body: string }[] = [];

  before(async () => {
    const port = await freePort();
    plane = await PlaneStandin.start({
      split: true,
      redirectUris: [callbackUri(`http://127.0.0.1:${port}`, 'plane')],
    });
    plane.addUser({ email: 'mona@acme.example', display_name: 'Mona' });
    latchkey = await startFederated(kind, {
      port,
      providers: () => [
        {
          id: 'plane',
          type: 'plane',
          client_id: plane.clientId,
          client_secret: plane.clientSecret,
          base_url: plane.baseUrl,
          internal_base_url: plane.internalBaseUrl,
          create_users: true,
          allowed_workspaces: ['acme'],
        },
      ],
    });
    mcp = createServer();
    await new Promise<void>((resolve) => mcp.listen(0, '127.0.0.1', resolve));
    publicUrl = `http://127.0.0.1:${(mcp.address() as { port: number }).port}/mcp`;
    rs = await addResourceServer(latchkey.stores, publicUrl, 'Plane MCP');
    await allowUpstream(latchkey, rs, { claims: true, token: ['plane'] });
    await latchkey.stores.resourceServers.update(publicUrl, { requiredUpstreamProvider: 'plane' });
    await latchkey.app.latchkey.changes.flush();
    const { app } = createMcpApp({
      publicUrl,
      issuer: latchkey.url,
      clientId: rs.clientId,
      clientSecret: rs.clientSecret,
      plane: { apiUrl: plane.internalBaseUrl },
      // Record what the example server got from Latchkey's /introspect and /token (for the "never leaked" checks).
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        const url = String(input);
        if (url.startsWith(latchkey.url)) seen.push({ url, body: await res.clone().text() });
        return res;
      },
    });
    mcp.on('request', app);
  });
  after(async () => {
    mcp?.closeAllConnections();
    await new Promise((resolve) => mcp?.close(resolve));
    await latchkey?.close();
    await plane?.close();
  });

  it('discovers, registers, signs in at Plane, approves, and plane_me reaches Plane with the person’s Plane token', async () => {
    const provider = new HeadlessProvider({
      issuer: latchkey.url,
      upstream: { provider: 'plane', origin: plane.baseUrl },
    });
    const sdkTokens: string[] = [];
    const options = {
      authProvider: provider,
      fetch: async (input: string | URL, init?: RequestInit) => {
        const res = await fetch(input, init);
        if (String(input).startsWith(latchkey.url)) sdkTokens.push(await res.clone().text());
        return res;
      },
    };
    const first = new Client({ name: 'e2e', version: '0.0.0' });
    await assert.rejects(
      first.connect(new StreamableHTTPClientTransport(new URL(publicUrl), options)),
      UnauthorizedError,
    );
    // The authorization went through the Plane-only sign-in page (required provider) and Plane's authorize page.
    const signInPage = provider.authorizationUrls.length;
    assert.equal(signInPage, 1);
    assert.equal(plane.recorded('authorize').length, 1);
    assert.ok(provider.code, 'approved and redirected back with a code');
    const transport = new StreamableHTTPClientTransport(new URL(publicUrl), options);
    await transport.finishAuth(provider.code);
    await first.close();

    const client = new Client({ name: 'e2e', version: '0.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(publicUrl), options));
    try {
      const tools = await client.listTools();
      assert.ok(tools.tools.some((t) => t.name === 'plane_me'));

      const before = plane.recorded('me').length;
      const result = await client.callTool({ name: 'plane_me', arguments: {} });
      assert.notEqual(result.isError, true, text(result));
      const user = [...plane.users.values()][0]!;
      assert.deepEqual(JSON.parse(text(result)), {
        id: user.id,
        email: 'mona@acme.example',
        display_name: 'Mona',
        workspace: 'acme',
      });
      // The tool's call reached the Plane stand-in's internal listener with a Plane token Plane issued.
      const calls = plane.recorded('me').slice(before);
      assert.equal(calls.length, 1);
      assert.equal(calls[0]!.via, 'internal');
      const bearer = calls[0]!.headers.authorization?.replace(/^Bearer /, '') ?? '';
      assert.ok(plane.issuedAccessTokens.includes(bearer), 'a token the Plane stand-in issued');

      const who = JSON.parse(text(await client.callTool({ name: 'whoami', arguments: {} }))) as {
        upstream?: { provider: string; sub: string; claims: Record<string, unknown> };
      };
      assert.equal(who.upstream?.provider, 'plane');
      assert.equal(who.upstream?.sub, user.id);
      assert.equal(who.upstream?.claims.workspace_slug, 'acme');

      // No Plane token ever reached the MCP client, and none was in an /introspect answer.
      for (const token of plane.issuedAccessTokens) {
        assert.ok(!sdkTokens.some((b) => b.includes(token)), 'a Plane token reached the MCP client');
        assert.ok(
          !seen.filter((s) => s.url.endsWith('/introspect')).some((s) => s.body.includes(token)),
          'a Plane token was in /introspect',
        );
      }
      assert.ok(
        seen.some((s) => s.url.endsWith('/token') && s.body.includes(bearer)),
        'it came by exchange',
      );
    } finally {
      await client.close();
    }
  });
});
