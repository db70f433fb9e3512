// What the metadata promises about security (RFC 8414 §2; RFC 9700 §2.1.1, §2.1.2, §2.4, §4.4) and the headers
// every answer carries (RFC 9700 §4.2.4 Referer leakage). Nothing here touches storage, so one database suffices.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DB_KINDS } from '../helpers/db.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

describe('security promises in the metadata and headers', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer(DB_KINDS[0] ?? 'pglite');
  });
  after(() => server.close());

  it('advertises S256 only, the iss response parameter, the code response type only, and no implicit or password grant', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const doc = (await (await fetch(`${server.url}${path}`)).json()) as Record<string, unknown>;
      assert.equal(doc.issuer, server.url);
      assert.deepEqual(doc.code_challenge_methods_supported, ['S256']);
      assert.equal(doc.authorization_response_iss_parameter_supported, true);
      assert.deepEqual(doc.response_types_supported, ['code']);
      const grants = doc.grant_types_supported as string[];
      assert.ok(grants.includes('authorization_code') && grants.includes('refresh_token'));
      for (const refused of ['implicit', 'password']) assert.equal(grants.includes(refused), false, refused);
    }
  });

  it('sends Referrer-Policy: no-referrer and nosniff on API answers, pages and errors alike', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/login', '/authorize', '/no-such-path']) {
      const res = await fetch(`${server.url}${path}`, { redirect: 'manual' });
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    }
  });
});
