// Malformed input is a 4xx with a standard answer, never a 500, and changes nothing (issue 10): each reproduction
// from the issue is its own test. API routes answer invalid_request (RFC 6749 §5.2), /register
// invalid_client_metadata (RFC 7591 §3.2.2), Latchkey's pages their HTML error page. Parameters are single
// (RFC 6749 §3.1), bounded, and free of control characters.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, it } from 'node:test';
import { basicCredentials } from '../helpers/basic-auth.ts';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { authorizeUrl } from '../helpers/flow.ts';
import { type RowCounts, rowCounts } from '../helpers/row-counts.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  startServer,
  type TestClient,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const JSON_TYPE = { 'content-type': 'application/json' };

forEachDatabase('malformed input', (kind) => {
  let server: TestServer;
  let client: TestClient;
  let rs: TestResourceServer;
  let before_: RowCounts;

  before(async () => {
    server = await startServer(kind, { env: { REGISTRATION_RATE_LIMIT: '1000' } });
    client = await addClient(server.stores, { redirectUris: ['https://app.example.com/callback'] });
    rs = await addResourceServer(server.stores, 'https://mcp.example.com');
    await addUser(server.stores, 'owner@example.com');
  });
  after(() => server.close());
  // Rate-limit counters may move (a refused registration still counts against its address), and client traces record
  // refused requests of known clients (README: Client traces); nothing else may.
  beforeEach(async () => {
    before_ = await rowCounts(server.database, ['rate_limits', 'client_traces']);
  });
  afterEach(async () => {
    assert.deepEqual(
      await rowCounts(server.database, ['rate_limits', 'client_traces']),
      before_,
      'a refused request wrote rows',
    );
  });

  async function apiError(res: Response, status: number, error: string, description?: RegExp) {
    const text = await res.text();
    assert.equal(res.status, status, text);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const body = JSON.parse(text) as { error: string; error_description: string };
    assert.equal(body.error, error);
    if (description) assert.match(body.error_description, description);
    assert.equal(res.headers.get('cache-control'), 'no-store');
  }

  async function errorPage(res: Response, description?: RegExp) {
    const html = await res.text();
    assert.equal(res.status, 400, html.slice(0, 300));
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(res.headers.get('location'), null, 'never redirects on unvalidated input');
    if (description) assert.match(html, description);
  }

  const post = (path: string, body: string, headers: Record<string, string> = FORM) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers, body, redirect: 'manual' });

  it('POST /authorize with a JSON body {"client_id":123} is the error page, not a 500', async () => {
    await errorPage(await post('/authorize', '{"client_id":123}', JSON_TYPE), /x-www-form-urlencoded/);
  });

  it('POST /authorize with a JSON object or array body is the error page', async () => {
    await errorPage(await post('/authorize', '{"client_id":{"a":1}}', JSON_TYPE));
    await errorPage(await post('/authorize', '[1,2]', JSON_TYPE));
  });

  it('GET /authorize?client_id=a%00b is the error page, not a 500', async () => {
    const url = `${server.url}/authorize?client_id=a%00b&response_type=code`;
    await errorPage(
      await fetch(url, { redirect: 'manual' }),
      /client_id must not contain control characters/,
    );
  });

  it('a control character in another /authorize parameter goes back to the client as invalid_request', async () => {
    const res = await fetch(authorizeUrl(server, client, { resource: `${rs.uri}/\u0000` }), {
      redirect: 'manual',
    });
    assert.equal(res.status, 302);
    const back = new URL(res.headers.get('location')!);
    assert.equal(back.searchParams.get('error'), 'invalid_request');
    assert.match(back.searchParams.get('error_description')!, /resource must not contain control characters/);
  });

  it('a NUL byte in client_id at /token is invalid_request, not a 500', async () => {
    await apiError(
      await post('/token', 'grant_type=authorization_code&code=x&code_verifier=y&client_id=a%00b'),
      400,
      'invalid_request',
      /client_id must not contain control characters/,
    );
  });

  it('a NUL byte in client_id at /revoke is invalid_request, not a 500', async () => {
    await apiError(await post('/revoke', 'token=x&client_id=a%00b'), 400, 'invalid_request', /client_id/);
  });

  it('Basic credentials a\\0b:x at /introspect are refused as invalid_client, not a 500', async () => {
    const res = await post('/introspect', 'token=x', {
      ...FORM,
      authorization: `Basic ${Buffer.from('a\u0000b:x').toString('base64')}`,
    });
    await apiError(res, 401, 'invalid_client');
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /);
  });

  it('Basic credentials with a NUL at /token and /revoke are refused as invalid_client', async () => {
    const authorization = `Basic ${basicCredentials('a\u0000b', 'x')}`;
    await apiError(
      await post('/token', 'grant_type=client_credentials', { ...FORM, authorization }),
      401,
      'invalid_client',
    );
    await apiError(await post('/revoke', 'token=x', { ...FORM, authorization }), 401, 'invalid_client');
  });

  it('email=a%00b@… at /login is the error page, not a 500', async () => {
    const browser = new FormBrowser(server.url);
    const page = await browser.request('/login');
    const res = await browser.submit(page, '/login', { email: 'a\u0000b@example.com', password: 'x' });
    assert.equal(res.status, 400, res.html.slice(0, 300));
    assert.match(res.html, /email must not contain control characters/);
  });

  it('a DCR body with "x\\u0000" in any string is invalid_client_metadata, not a 500', async () => {
    const good = { redirect_uris: ['https://app.example.com/cb'], client_name: 'App' };
    const bodies = [
      { ...good, client_name: 'x\u0000' },
      { ...good, redirect_uris: ['https://app.example.com/cb\u0000'] },
      { ...good, software_id: 'x\u0000' },
      { ...good, extra: { nested: ['x\u0000'] } },
      { ...good, 'x\u0000': 'y' },
    ];
    for (const body of bodies) {
      await apiError(
        await post('/register', JSON.stringify(body), JSON_TYPE),
        400,
        'invalid_client_metadata',
      );
    }
  });

  it('a DCR body that is not a JSON object, or not JSON, is refused with a standard error', async () => {
    await apiError(await post('/register', '[1,2]', JSON_TYPE), 400, 'invalid_client_metadata');
    await apiError(await post('/register', '"x"', JSON_TYPE), 400, 'invalid_client_metadata');
    await apiError(
      await post('/register', 'redirect_uris=x'),
      400,
      'invalid_client_metadata',
      /application\/json/,
    );
    await apiError(await post('/register', '{"a":', JSON_TYPE), 400, 'invalid_request');
  });

  it('refuses a repeated parameter at /token, /revoke and /introspect (RFC 6749 §3.1)', async () => {
    await apiError(
      await post('/token', 'grant_type=client_credentials&grant_type=client_credentials'),
      400,
      'invalid_request',
      /grant_type must not be repeated/,
    );
    await apiError(await post('/revoke', 'token=a&token=b&client_id=x'), 400, 'invalid_request', /token/);
    await apiError(await post('/introspect', 'token=a&token=b'), 400, 'invalid_request', /token/);
  });

  it('refuses an oversized parameter and a body of the wrong type on the API', async () => {
    await apiError(
      await post('/token', `grant_type=refresh_token&refresh_token=${'a'.repeat(5000)}&client_id=x`),
      400,
      'invalid_request',
      /refresh_token is too long/,
    );
    await apiError(await post('/token', '{"grant_type":"x"}', JSON_TYPE), 400, 'invalid_request');
    await apiError(
      await post('/token', 'grant_type=x', { 'content-type': 'text/plain' }),
      400,
      'invalid_request',
    );
  });

  it('refuses a repeated or oversized parameter on the sign-in page with the error page', async () => {
    await errorPage(
      await fetch(`${server.url}/login?return_to=a&return_to=b`),
      /return_to must not be repeated/,
    );
    const browser = new FormBrowser(server.url);
    const page = await browser.request('/login');
    const res = await browser.submit(page, '/login', {
      email: 'owner@example.com',
      password: 'p'.repeat(2000),
    });
    assert.equal(res.status, 400);
    assert.match(res.html, /password is too long/);
  });

  it('refuses a control character in the consent form', async () => {
    await errorPage(await post('/authorize', 'client_id=a%01&decision=approve'), /client_id/);
  });
});
