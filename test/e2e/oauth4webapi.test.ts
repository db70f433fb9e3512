// oauth4webapi is a strict client: it checks the metadata's issuer, `iss` on the authorization response
// (RFC 9207), state, and every field of the token responses. It completes the whole flow here, for a public
// client and for both client-secret methods, on PGlite and on Postgres.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import * as oauth from 'oauth4webapi';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
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

const insecure = { [oauth.allowInsecureRequests]: true } as const;

forEachDatabase('oauth4webapi completes the authorization code flow', (kind) => {
  let server: TestServer;
  let email: string;
  let rs: TestResourceServer;
  let as: oauth.AuthorizationServer;

  before(async () => {
    server = await startServer(kind);
    email = await addUser(server.stores);
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    const issuer = new URL(server.url);
    as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    );
  });
  after(() => server.close());

  const cases = [
    ['public client (none)', 'none', () => oauth.None()],
    [
      'confidential client (client_secret_post)',
      'client_secret_post',
      (s: string) => oauth.ClientSecretPost(s),
    ],
    [
      'confidential client (client_secret_basic)',
      'client_secret_basic',
      (s: string) => oauth.ClientSecretBasic(s),
    ],
  ] as const;

  for (const [name, method, auth] of cases) {
    it(`${name}: authorize, exchange the code, refresh, and introspect (RFC 6749 §4.1, §6; RFC 9207)`, async () => {
      const registered = await addClient(server.stores, {
        authMethod: method,
        redirectUris: ['http://127.0.0.1:8976/callback'],
      });
      const client: oauth.Client = { client_id: registered.clientId };
      const clientAuth = auth(registered.clientSecret ?? '');
      const verifier = oauth.generateRandomCodeVerifier();
      const state = oauth.generateRandomState();
      const url = new URL(as.authorization_endpoint!);
      url.search = new URLSearchParams({
        client_id: client.client_id,
        redirect_uri: registered.redirectUri,
        response_type: 'code',
        scope: 'mcp',
        state,
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        resource: rs.uri,
      }).toString();

      const browser = new FormBrowser(server.url);
      const callback = await browser.authorize(url.href, { email, password: TEST_PASSWORD });
      assert.equal(callback.origin + callback.pathname, registered.redirectUri);
      assert.equal(callback.searchParams.get('iss'), server.url);

      const params = oauth.validateAuthResponse(as, client, callback, state);
      const response = await oauth.authorizationCodeGrantRequest(
        as,
        client,
        clientAuth,
        params,
        registered.redirectUri,
        verifier,
        {
          additionalParameters: { resource: rs.uri },
          ...insecure,
        },
      );
      assert.equal(response.headers.get('cache-control'), 'no-store');
      const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
      assert.equal(tokens.token_type, 'bearer');
      assert.equal(tokens.scope, 'mcp');
      assert.equal(tokens.expires_in, 3600);
      assert.ok(tokens.refresh_token);

      const introspected = await introspect(server.url, rs, tokens.access_token);
      assert.equal(introspected.active, true);
      assert.equal(introspected.username, email);
      assert.equal(introspected.aud, rs.uri);
      assert.equal(introspected.client_id, registered.clientId);

      const refreshed = await oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, insecure),
      );
      assert.notEqual(refreshed.access_token, tokens.access_token);
      assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
      assert.equal((await introspect(server.url, rs, refreshed.access_token)).active, true);
    });
  }
});
