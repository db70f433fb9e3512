// Client registration end to end, the way real MCP clients do it: the official MCP SDK client through dynamic
// registration (RFC 7591) and through a Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document),
// Claude's exact registration body with client_secret_post, a public registration, and Claude Code's CIMD shape
// (portless loopback redirect URIs used with ephemeral ports, RFC 8252 §7.3). Documents are served over https on
// 127.0.0.1 with a generated certificate that Latchkey trusts through `cimd.ca`; `client.test` resolves to
// 127.0.0.1 through an injected resolver, so no traffic leaves loopback.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import type { FastifyInstance } from 'fastify';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { authorizeUrl, exchangeCode, obtainCode, refreshToken, tokenRequest } from '../helpers/flow.ts';
import { HeadlessProvider } from '../helpers/mcp-provider.ts';
import { protectedResource } from '../helpers/protected-resource.ts';
import {
  addResourceServer,
  addUser,
  introspect,
  startServer,
  TEST_PASSWORD,
  type TestClient,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';
import { generateCertificate, HttpsDocumentHost, loopbackLookup } from '../helpers/tls.ts';

// Exactly what Claude sends (its 2026 registration request), byte for byte.
const CLAUDE_BODY =
  '{"redirect_uris":["https://claude.ai/api/mcp/auth_callback"],"token_endpoint_auth_method":"client_secret_post","grant_types":["authorization_code","refresh_token"],"response_types":["code"],"client_name":"Claude"}';
const CLAUDE_CALLBACK = 'https://claude.ai/api/mcp/auth_callback';
const SDK_REDIRECT = 'http://127.0.0.1:8976/callback';

const certificate = generateCertificate();
const documents = new HttpsDocumentHost(certificate, 'client.test');

before(() => documents.start());
after(() => documents.stop());

/** Latchkey with loopback CIMD documents allowed and the test certificate trusted. */
function startLatchkey(kind: Parameters<typeof startServer>[0]): Promise<TestServer> {
  return startServer(kind, {
    env: { CIMD_ALLOW_LOOPBACK: 'true', REGISTRATION_RATE_LIMIT: '1000' },
    cimd: { ca: certificate.cert, lookup: loopbackLookup(documents.hostname) },
  });
}

let documentCounter = 0;
/** Publishes a CIMD document at a fresh path and returns its URL (the client_id). */
function publishDocument(path: string, fields: Record<string, unknown>): string {
  return documents.publish(`${path}-${++documentCounter}`, (clientId) => ({
    client_id: clientId,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    ...fields,
  }));
}

async function registerOverHttp(
  server: TestServer,
  body: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A fetch for the SDK that records every request it makes. */
function recordingFetch(): { fetchFn: typeof fetch; requests: { method: string; url: URL }[] } {
  const requests: { method: string; url: URL }[] = [];
  const fetchFn: typeof fetch = (input, init) => {
    const request = new Request(input, init);
    requests.push({ method: request.method, url: new URL(request.url) });
    return fetch(input, init);
  };
  return { fetchFn, requests };
}

forEachDatabase('client registration end to end', (kind) => {
  let server: TestServer;
  let resource: { app: FastifyInstance; url: string };
  let rs: TestResourceServer;
  let email: string;
  const dynamicClients = () => server.database.db.prisma.client.count({ where: { kind: 'DYNAMIC' } });

  before(async () => {
    server = await startLatchkey(kind);
    resource = await protectedResource(server.url);
    rs = await addResourceServer(server.stores, resource.url);
    email = await addUser(server.stores);
  });
  after(async () => {
    await resource.app.close();
    await server.close();
  });

  /** After the SDK's redirect: the authorization request it made and the response it got (RFC 9207 iss). */
  function expectAuthorizationResponse(provider: HeadlessProvider, clientId: string) {
    const authorizationUrl = provider.authorizationUrls[0]!;
    assert.equal(authorizationUrl.searchParams.get('client_id'), clientId);
    assert.equal(authorizationUrl.searchParams.get('resource'), resource.url);
    assert.equal(provider.lastCallback?.searchParams.get('iss'), server.url);
    assert.ok(provider.code, `no code in ${provider.lastCallback?.href}`);
  }

  /** The SDK's next auth() exchanges the code, the one after refreshes; both tokens introspect active. */
  async function exchangeThenRefresh(provider: HeadlessProvider, fetchFn: typeof fetch, clientId: string) {
    assert.equal(
      await auth(provider, { serverUrl: resource.url, authorizationCode: provider.code, fetchFn }),
      'AUTHORIZED',
    );
    const first = provider.tokens();
    assert.ok(first?.access_token && first.refresh_token);
    const info = await introspect(server.url, rs, first.access_token);
    assert.equal(info.active, true);
    assert.equal(info.client_id, clientId);

    assert.equal(await auth(provider, { serverUrl: resource.url, fetchFn }), 'AUTHORIZED');
    const second = provider.tokens();
    assert.ok(second?.access_token && second.refresh_token);
    assert.notEqual(second.refresh_token, first.refresh_token);
    assert.equal(provider.authorizationUrls.length, 1, 'the refresh did not start a new authorization');
    assert.equal((await introspect(server.url, rs, second.access_token)).active, true);
  }

  describe('the MCP SDK client', () => {
    it('uses its clientMetadataUrl as client_id without registering, then exchanges and refreshes (CIMD §3, §4)', async () => {
      const prisma = server.database.db.prisma;
      const dynamicBefore = await dynamicClients();
      const clientId = publishDocument('/oauth/mcp-sdk-client', {
        client_name: 'MCP SDK test client',
        redirect_uris: [SDK_REDIRECT],
      });
      const documentPath = new URL(clientId).pathname;
      const provider = new HeadlessProvider({
        issuer: server.url,
        email,
        password: TEST_PASSWORD,
        clientMetadataUrl: clientId,
      });
      const { fetchFn, requests } = recordingFetch();

      assert.equal(await auth(provider, { serverUrl: resource.url, fetchFn }), 'REDIRECT');
      expectAuthorizationResponse(provider, clientId);
      assert.ok((documents.hits.get(documentPath) ?? 0) >= 1, 'Latchkey fetched the document');
      const row = await prisma.client.findUnique({ where: { clientId } });
      assert.equal(row?.kind, 'CIMD');
      assert.deepEqual(row.redirectUris, [SDK_REDIRECT]);
      assert.equal(row.tokenEndpointAuthMethod, 'none');

      await exchangeThenRefresh(provider, fetchFn, clientId);

      // No dynamic registration: the SDK never called /register and no DYNAMIC client appeared.
      assert.deepEqual(
        requests.filter((r) => r.url.pathname === '/register'),
        [],
      );
      assert.ok(
        requests.some((r) => r.method === 'POST' && r.url.href === `${server.url}/token`),
        'the SDK used the token endpoint',
      );
      assert.equal(await dynamicClients(), dynamicBefore, 'no DYNAMIC client was created');
    });

    it('registers dynamically, authorizes, exchanges the code and refreshes (RFC 7591 §3, MCP authorization)', async () => {
      const prisma = server.database.db.prisma;
      const dynamicBefore = await dynamicClients();
      const provider = new HeadlessProvider({ issuer: server.url, email, password: TEST_PASSWORD });
      const { fetchFn, requests } = recordingFetch();

      assert.equal(await auth(provider, { serverUrl: resource.url, fetchFn }), 'REDIRECT');
      const registrations = requests.filter((r) => r.url.href === `${server.url}/register`);
      assert.deepEqual(
        registrations.map((r) => r.method),
        ['POST'],
      );
      const registered = provider.clientInformation();
      assert.ok(registered?.client_id, 'the SDK saved the registered client');
      assert.equal(await dynamicClients(), dynamicBefore + 1);
      const row = await prisma.client.findUnique({ where: { clientId: registered.client_id } });
      assert.equal(row?.kind, 'DYNAMIC');
      assert.deepEqual(row.redirectUris, [SDK_REDIRECT]);
      assert.equal(row.tokenEndpointAuthMethod, 'none');
      assert.equal(row.name, 'MCP SDK test client');

      expectAuthorizationResponse(provider, registered.client_id);

      await exchangeThenRefresh(provider, fetchFn, registered.client_id);
      assert.equal(await dynamicClients(), dynamicBefore + 1, 'registered once');
    });
  });

  describe('Claude and Claude Code', () => {
    it("registers Claude's exact body, authorizes, and exchanges and refreshes with client_secret_post (RFC 7591 §3.2.1, RFC 6749 §2.3.1)", async () => {
      const r = await registerOverHttp(server, CLAUDE_BODY);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.token_endpoint_auth_method, 'client_secret_post');
      assert.equal(typeof r.body.client_secret, 'string');
      const client: TestClient = {
        clientId: r.body.client_id as string,
        clientSecret: r.body.client_secret as string,
        redirectUri: CLAUDE_CALLBACK,
      };

      // Claude sends resource and prompt=consent; the redirect to claude.ai is captured, never followed.
      const browser = new FormBrowser(server.url);
      const callback = await browser.authorize(
        authorizeUrl(server, client, { resource: rs.uri, prompt: 'consent' }),
        { email, password: TEST_PASSWORD },
      );
      assert.equal(`${callback.origin}${callback.pathname}`, CLAUDE_CALLBACK);
      assert.equal(callback.searchParams.get('iss'), server.url);
      assert.equal(callback.searchParams.get('state'), 'state-123');
      const code = callback.searchParams.get('code');
      assert.ok(code, `no code in ${callback.href}`);

      const tokens = await exchangeCode(server, client, code, { resource: rs.uri });
      assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
      assert.equal(tokens.headers.get('cache-control'), 'no-store');
      assert.equal(tokens.body.token_type, 'Bearer');
      const info = await introspect(server.url, rs, tokens.body.access_token as string);
      assert.equal(info.active, true);
      assert.equal(info.client_id, client.clientId);

      // A confidential client must authenticate to refresh; the failed attempt spends nothing.
      const unauthenticated = await tokenRequest(server, {
        grant_type: 'refresh_token',
        refresh_token: tokens.body.refresh_token as string,
        client_id: client.clientId,
      });
      assert.equal(unauthenticated.status, 401);
      assert.equal(unauthenticated.body.error, 'invalid_client');

      const refreshed = await refreshToken(server, client, tokens.body.refresh_token as string, {
        resource: rs.uri,
      });
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
      assert.notEqual(refreshed.body.refresh_token, tokens.body.refresh_token);
      assert.equal((await introspect(server.url, rs, refreshed.body.access_token as string)).active, true);
    });

    it('registers a client without token_endpoint_auth_method as public (none) and exchanges with no secret (RFC 7591 §2)', async () => {
      const body = JSON.stringify({
        redirect_uris: [CLAUDE_CALLBACK],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        client_name: 'Claude Desktop',
      });
      const r = await registerOverHttp(server, body);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.token_endpoint_auth_method, 'none');
      assert.equal(r.body.client_secret, undefined);
      const row = await server.database.db.prisma.client.findUnique({
        where: { clientId: r.body.client_id as string },
      });
      assert.equal(row?.kind, 'DYNAMIC');
      assert.equal(row.secretHash, null);
      const client: TestClient = {
        clientId: r.body.client_id as string,
        clientSecret: undefined,
        redirectUri: CLAUDE_CALLBACK,
      };

      const code = await obtainCode(server, client, email, { resource: rs.uri });
      const tokens = await exchangeCode(server, client, code, { resource: rs.uri });
      assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
      assert.equal((await introspect(server.url, rs, tokens.body.access_token as string)).active, true);

      const refreshed = await refreshToken(server, client, tokens.body.refresh_token as string);
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
      assert.equal((await introspect(server.url, rs, refreshed.body.access_token as string)).active, true);
    });

    it("accepts Claude Code's portless loopback redirect URIs on any port and refuses another path on an error page (RFC 8252 §7.3, CIMD §4)", async () => {
      const clientId = publishDocument('/oauth/claude-code-client-metadata', {
        client_name: 'Claude Code',
        redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
      });

      for (const redirectUri of ['http://127.0.0.1:54321/callback', 'http://localhost:54322/callback']) {
        const client: TestClient = { clientId, clientSecret: undefined, redirectUri };
        const browser = new FormBrowser(server.url);
        const callback = await browser.authorize(authorizeUrl(server, client, { resource: rs.uri }), {
          email,
          password: TEST_PASSWORD,
        });
        assert.equal(`${callback.origin}${callback.pathname}`, redirectUri);
        const code = callback.searchParams.get('code');
        assert.ok(code, `no code in ${callback.href}`);
        const tokens = await exchangeCode(server, client, code, { resource: rs.uri });
        assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
        const info = await introspect(server.url, rs, tokens.body.access_token as string);
        assert.equal(info.active, true);
        assert.equal(info.client_id, clientId);
      }
      const row = await server.database.db.prisma.client.findUnique({ where: { clientId } });
      assert.equal(row?.kind, 'CIMD');

      // Another path on the same loopback port is not registered: an error page, never a redirect.
      const other: TestClient = {
        clientId,
        clientSecret: undefined,
        redirectUri: 'http://127.0.0.1:54321/other',
      };
      const browser = new FormBrowser(server.url);
      const page = await browser.request(authorizeUrl(server, other, { resource: rs.uri }));
      assert.equal(page.redirectedTo, undefined, `redirected to ${page.redirectedTo}`);
      assert.equal(page.status, 400);
      assert.equal(page.headers.get('location'), null);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
      assert.match(page.html, /redirect_uri is not registered for this client/);
    });
  });
});
