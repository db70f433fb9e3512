// Upstream claims in /introspect (spec federation §6.1; acceptance I1–I3), after a real sign-in through the Plane
// stand-in, on both databases. Every /introspect body of this file is kept and checked for upstream tokens.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { basicAuth } from '../helpers/basic-auth.ts';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { allowUpstream, exchange } from '../helpers/federated-grants.ts';
import { approve, callbackUri, openAuthorize, pressProvider, startFederated } from '../helpers/federation.ts';
import { exchangeCode } from '../helpers/flow.ts';
import { PlaneStandin } from '../helpers/plane-standin.ts';
import {
  addClient,
  addResourceServer,
  freePort,
  type TestClient,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';

const TODAY_MEMBERS = [
  'active',
  'aud',
  'client_id',
  'exp',
  'iat',
  'iss',
  'scope',
  'sub',
  'token_type',
  'username',
];

forEachDatabase('upstream claims in /introspect', (kind) => {
  let plane: PlaneStandin;
  let server: TestServer;
  let client: TestClient;
  const bodies: string[] = [];

  before(async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    plane = await PlaneStandin.start({ redirectUris: [callbackUri(issuer, 'plane')] });
    plane.addUser({
      email: 'jane@acme.example',
      first_name: 'Jane',
      last_name: 'Roe',
      display_name: 'Jane R',
    });
    server = await startFederated(kind, {
      port,
      providers: () => [
        {
          id: 'plane',
          type: 'plane',
          client_id: plane.clientId,
          client_secret: plane.clientSecret,
          base_url: plane.baseUrl,
          create_users: true,
          allow_anyone: true,
        },
      ],
    });
    client = await addClient(server.stores);
  });
  after(async () => {
    await server?.close();
    await plane?.close();
    // I3: no upstream access token in any /introspect body of this file.
    for (const token of plane.issuedAccessTokens) {
      assert.ok(!bodies.some((b) => b.includes(token)), 'an upstream token reached /introspect');
    }
  });

  async function introspectRaw(rs: TestResourceServer, token: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${server.url}/introspect`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basicAuth(rs.clientId, rs.clientSecret),
      },
      body: new URLSearchParams({ token }),
    });
    const text = await res.text();
    bodies.push(text);
    assert.equal(res.status, 200);
    return JSON.parse(text) as Record<string, unknown>;
  }

  /** Signs in through Plane in a new browser and approves; returns Latchkey's access token for `rs`. */
  async function planeToken(rs: TestResourceServer): Promise<string> {
    const browser = new FormBrowser(server.url, { follow: [plane.baseUrl] });
    const login = await openAuthorize(server, browser, client, { resource: rs.uri });
    const consent = await pressProvider(browser, login, 'plane');
    const back = await approve(browser, consent);
    const t = await exchangeCode(server, client, back.searchParams.get('code')!, { resource: rs.uri });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    return String(t.body.access_token);
  }

  test('I1: without upstream_claims, exactly today’s members; with it, `upstream`, and no upstream call', async () => {
    const rs = await addResourceServer(server.stores, `${server.url}/mcp-i1`);
    const token = await planeToken(rs);
    const plain = await introspectRaw(rs, token);
    assert.equal(plain.active, true);
    assert.deepEqual(Object.keys(plain).sort(), TODAY_MEMBERS);

    await allowUpstream(server, rs, { claims: true });
    const recorded = plane.requests.length;
    const first = await introspectRaw(rs, token);
    const second = await introspectRaw(rs, token);
    assert.deepEqual(second, first);
    assert.equal(plane.requests.length, recorded, 'no upstream request on the /introspect path');
    const user = [...plane.users.values()][0]!;
    const ws = plane.workspaces[0]!;
    assert.deepEqual(first.upstream, {
      provider: 'plane',
      sub: user.id,
      email: 'jane@acme.example',
      email_verified: false,
      name: 'Jane R',
      username: 'Jane R',
      claims: {
        workspace_id: ws.id,
        workspace_slug: 'acme',
        workspace_name: 'Acme',
        installation_id: ws.installationId,
        first_name: 'Jane',
        last_name: 'Roe',
        display_name: 'Jane R',
        avatar_url: user.avatar_url,
      },
    });
    const { upstream: _, ...rest } = first;
    assert.deepEqual(rest, plain, 'the other members are unchanged');
  });

  test('I2: one cache entry, two kinds of caller: `upstream` never reaches a caller without the flag', async () => {
    const withFlag = await addResourceServer(server.stores, `${server.url}/mcp-i2-flag`);
    const without = await addResourceServer(server.stores, `${server.url}/mcp-i2-plain`);
    await allowUpstream(server, withFlag, { claims: true });
    const tFlag = await planeToken(withFlag);
    const tPlain = await planeToken(without);
    // Fill the cache through the flagged caller first, then ask as the other, in both orders.
    assert.ok((await introspectRaw(withFlag, tFlag)).upstream);
    assert.deepEqual(await introspectRaw(without, tFlag), { active: false });
    const plain = await introspectRaw(without, tPlain);
    assert.equal(plain.active, true);
    assert.equal(plain.upstream, undefined);
    assert.deepEqual(await introspectRaw(withFlag, tPlain), { active: false });
    assert.equal((await introspectRaw(without, tPlain)).upstream, undefined);
    // The flag taken away: the next answer has no `upstream` (the change clears every instance's caches).
    await allowUpstream(server, withFlag, { claims: false });
    const after = await introspectRaw(withFlag, tFlag);
    assert.equal(after.active, true);
    assert.equal(after.upstream, undefined);
  });

  test('I3: the exchange gives the upstream token to a resource server allowed it; /introspect never does', async () => {
    const rs = await addResourceServer(server.stores, `${server.url}/mcp-i3`);
    await allowUpstream(server, rs, { claims: true, token: ['plane'] });
    const token = await planeToken(rs);
    const x = await exchange(server.url, rs, token);
    assert.equal(x.status, 200);
    assert.ok(plane.issuedAccessTokens.includes(String(x.body.access_token)));
    const body = await introspectRaw(rs, token);
    assert.ok(body.upstream);
    assert.ok(!JSON.stringify(body).includes(String(x.body.access_token)));
  });
});
