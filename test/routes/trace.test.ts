// The steps each route records in a client's trace (README: Client traces), through real flows against a real
// listener: the front channel, /token with its errors, a refresh replay, refused introspections, DCR and CIMD.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { diagnose } from '../../src/trace/diagnosis.ts';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { authorizeUrl, exchangeCode, obtainCode, refreshToken } from '../helpers/flow.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  introspect,
  startServer,
  TEST_PASSWORD,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';
import { generateCertificate, HttpsDocumentHost, loopbackLookup } from '../helpers/tls.ts';

const certificate = generateCertificate();
const documents = new HttpsDocumentHost(certificate, 'client.test');
before(() => documents.start());
after(() => documents.stop());

forEachDatabase('client trace steps', (kind) => {
  let server: TestServer;
  let rs: TestResourceServer;
  let other: TestResourceServer;
  let email: string;
  before(async () => {
    server = await startServer(kind, {
      env: { CIMD_ALLOW_LOOPBACK: 'true' },
      cimd: { ca: certificate.cert, lookup: loopbackLookup(documents.hostname) },
    });
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    other = await addResourceServer(server.stores, 'https://mcp.other.example/mcp');
    email = await addUser(server.stores);
  });
  after(() => server.close());

  /** The client's steps once the recorder has written everything queued: [step, outcome, detail, resource]. */
  async function trace(clientId: string) {
    await server.app.latchkey.traces.flush();
    const rows = await server.stores.traces.list(clientId, 100);
    return { rows, steps: rows.map((r) => [r.step, r.outcome, r.detail, r.resource]) };
  }

  it('records the front channel, the code, the exchange, a refresh, a replay and the refused introspection', async () => {
    const client = await addClient(server.stores);
    const code = await obtainCode(server, client, email, { resource: rs.uri });
    const t = (await exchangeCode(server, client, code)).body;
    const r = await refreshToken(server, client, String(t.refresh_token));
    assert.equal(r.status, 200);
    server.clock.advance(server.config.refreshReuseWindow + 1);
    assert.equal((await refreshToken(server, client, String(t.refresh_token))).status, 400);
    assert.equal((await introspect(server.url, rs, String(r.body.access_token))).active, false);
    const { steps, rows } = await trace(client.clientId);
    assert.deepEqual(steps, [
      ['authorize', 'ok', 'sent to sign in', rs.uri],
      ['sign_in', 'ok', 'method password', null],
      ['authorize', 'ok', 'consent page shown', rs.uri],
      ['consent', 'given', null, rs.uri],
      ['code_issued', 'ok', null, rs.uri],
      ['token', 'ok', 'authorization_code', null],
      ['refresh', 'ok', null, null],
      ['refresh', 'invalid_grant', 'refresh token was already used; the grant has been revoked', null],
      ['introspection', 'inactive', 'grant revoked', rs.uri],
    ]);
    assert.equal(diagnose(rows).kind, 'refresh_replay');
  });

  it('names the resource server that was refused a token issued for another (audience), and expiry', async () => {
    const client = await addClient(server.stores);
    const code = await obtainCode(server, client, email, { resource: rs.uri });
    const t = (await exchangeCode(server, client, code)).body;
    assert.equal((await introspect(server.url, other, String(t.access_token))).active, false);
    server.clock.advance(server.config.accessTokenTtl + 1);
    assert.equal((await introspect(server.url, rs, String(t.access_token))).active, false);
    const { steps } = await trace(client.clientId);
    assert.deepEqual(steps.slice(-2), [
      ['introspection', 'inactive', `wrong audience: the token is for ${rs.uri}`, other.uri],
      ['introspection', 'inactive', 'token expired', rs.uri],
    ]);
  });

  it('records a redirect URI mismatch shown on the error page (without its query), an unknown resource, and /token errors', async () => {
    const client = await addClient(server.stores);
    const mismatch = await fetch(
      authorizeUrl(server, client, { redirect_uri: 'http://127.0.0.1:9/elsewhere?session=abc' }),
      { redirect: 'manual' },
    );
    assert.equal(mismatch.status, 400);
    let { steps, rows } = await trace(client.clientId);
    assert.deepEqual(steps, [
      [
        'authorize',
        'invalid_request',
        'redirect_uri not registered: http://127.0.0.1:9/elsewhere (shown on the error page, not redirected)',
        null,
      ],
    ]);
    assert.equal(diagnose(rows).kind, 'redirect_uri_mismatch');
    const unknown = 'https://mcp.unknown.example/mcp';
    const target = await fetch(authorizeUrl(server, client, { resource: unknown }), { redirect: 'manual' });
    assert.equal(target.status, 302);
    const bad = await exchangeCode(server, client, 'lk_code_not-a-real-code');
    assert.equal(bad.status, 400);
    ({ steps, rows } = await trace(client.clientId));
    assert.deepEqual(steps.slice(1), [
      ['authorize', 'invalid_target', 'unknown resource', unknown],
      ['token', 'invalid_grant', 'authorization_code: authorization code is invalid', null],
    ]);
    assert.equal(diagnose(rows.slice(0, 2)).kind, 'resource_not_registered');
  });

  it('records a consent denied, a dynamic registration, and CIMD fetches that worked, failed and were refused', async () => {
    const res = await fetch(`${server.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'dcr', redirect_uris: ['http://127.0.0.1:9/callback'] }),
    });
    const { client_id: dcr } = (await res.json()) as { client_id: string };
    assert.deepEqual((await trace(dcr)).steps, [
      ['registration', 'ok', 'dynamic registration (none): http://127.0.0.1:9/callback', null],
    ]);

    const good = documents.publish('/trace/good.json', (url) => ({
      client_id: url,
      client_name: 'cimd',
      redirect_uris: ['http://127.0.0.1:9/callback'],
      token_endpoint_auth_method: 'none',
    }));
    const missing = documents.urlFor('/trace/missing.json');
    const wrong = documents.publish('/trace/wrong.json', () => ({
      client_id: 'https://someone.else.example/client.json',
      client_name: 'wrong',
      redirect_uris: ['http://127.0.0.1:9/callback'],
    }));
    const cimd = { clientId: good, clientSecret: undefined, redirectUri: 'http://127.0.0.1:9/callback' };
    const denied = await new FormBrowser(server.url).authorize(
      authorizeUrl(server, cimd, { resource: rs.uri }),
      { email, password: TEST_PASSWORD },
      'deny',
    );
    assert.equal(denied.searchParams.get('error'), 'access_denied');
    for (const id of [missing, wrong]) {
      const page = await fetch(authorizeUrl(server, { ...cimd, clientId: id }), { redirect: 'manual' });
      assert.equal(page.status, 400);
    }
    const cimdSteps = (await trace(good)).rows;
    assert.deepEqual(cimdSteps[0]?.detail, 'document fetched: client registered');
    assert.deepEqual(cimdSteps.at(-1)?.step, 'consent');
    assert.equal(diagnose(cimdSteps).kind, 'consent_denied');
    const failed = (await trace(missing)).rows;
    assert.deepEqual(
      failed.map((s) => [s.step, s.outcome]),
      [['cimd_fetch', 'failed']],
    );
    assert.equal(diagnose(failed).kind, 'cimd_fetch_failed');
    const refused = (await trace(wrong)).rows;
    assert.deepEqual(
      refused.map((s) => [s.step, s.outcome]),
      [['cimd_fetch', 'refused']],
    );
    assert.equal(diagnose(refused).kind, 'registration_refused');
  });
});
