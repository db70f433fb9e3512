// Machine clients (RFC 6749 §4.4; the MCP authorization extension "OAuth client credentials"), driven by
// oauth4webapi's clientCredentialsGrantRequest over HTTP: an operator-created confidential client gets an
// audience-bound access token and no refresh token; introspection names the client as the subject.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, it } from 'node:test';
import * as oauth from 'oauth4webapi';
import { clientCommands } from '../../src/cli/clients.ts';
import { runCli } from '../../src/cli/run.ts';
import { validateClientMetadata } from '../../src/oauth/client-metadata.ts';
import { createClient } from '../../src/oauth/client-registration.ts';
import { forEachDatabase } from '../helpers/db.ts';
import {
  addClient,
  addResourceServer,
  introspect,
  startServer,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

forEachDatabase('client credentials for machine clients', (kind) => {
  let server: TestServer;
  let rs: TestResourceServer;
  let other: TestResourceServer;
  let as: oauth.AuthorizationServer;

  before(async () => {
    server = await startServer(kind, { env: { SCOPES: 'mcp files:read' } });
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    other = await addResourceServer(server.stores, 'https://other.example.com/mcp');
    const issuer = new URL(server.url);
    as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    );
  });
  after(() => server.close());

  /** A machine client made the way `latchkey client add --grant-type client_credentials` makes one. */
  async function machineClient(scope?: string) {
    const metadata = validateClientMetadata(
      {
        client_name: 'Nightly sync',
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_basic',
        ...(scope && { scope }),
      },
      { source: 'operator', supportedScopes: server.config.scopes },
    );
    const { client, secret } = await createClient(server.stores.clients, 'OPERATOR', metadata);
    return { client: { client_id: client.clientId } as oauth.Client, auth: oauth.ClientSecretBasic(secret!) };
  }

  async function request(c: Awaited<ReturnType<typeof machineClient>>, params: Record<string, string>) {
    const res = await oauth.clientCredentialsGrantRequest(
      as,
      c.client,
      c.auth,
      new URLSearchParams(params),
      insecure,
    );
    return oauth.processClientCredentialsResponse(as, c.client, res);
  }

  async function refusal(promise: Promise<unknown>): Promise<string | undefined> {
    try {
      await promise;
    } catch (err) {
      if (err instanceof oauth.ResponseBodyError) return err.error;
      throw err;
    }
    assert.fail('the request succeeded');
  }

  it('advertises client_credentials in grant_types_supported (RFC 8414 §2)', () => {
    assert.ok(as.grant_types_supported?.includes('client_credentials'));
  });

  it('issues an access token bound to the requested resource, and no refresh token (RFC 6749 §4.4.3)', async () => {
    const c = await machineClient();
    const tokens = await request(c, { resource: rs.uri });
    assert.equal(tokens.token_type, 'bearer');
    assert.equal(tokens.refresh_token, undefined);
    assert.match(tokens.access_token, /^lk_at_/);
    assert.equal(tokens.scope, 'mcp files:read');

    const answer = await introspect(server.url, rs, tokens.access_token);
    assert.equal(answer.active, true);
    assert.equal(answer.sub, c.client.client_id);
    assert.equal(answer.client_id, c.client.client_id);
    assert.equal(answer.aud, rs.uri);
    assert.equal('username' in answer, false);
    assert.deepEqual(await introspect(server.url, other, tokens.access_token), { active: false });
  });

  it('limits scopes to the ones the client is registered for (RFC 6749 §3.3)', async () => {
    const c = await machineClient('mcp');
    assert.equal((await request(c, { resource: rs.uri })).scope, 'mcp');
    assert.equal(await refusal(request(c, { resource: rs.uri, scope: 'files:read' })), 'invalid_scope');
  });

  it('refuses an unknown resource (RFC 8707 §2 invalid_target)', async () => {
    const c = await machineClient();
    assert.equal(
      await refusal(request(c, { resource: 'https://unknown.example.com/mcp' })),
      'invalid_target',
    );
  });

  it('refuses a public client (unauthorized_client, RFC 6749 §4.4.2)', async () => {
    const pub = await addClient(server.stores, { authMethod: 'none', grantTypes: ['client_credentials'] });
    const client = { client_id: pub.clientId };
    const res = await oauth.clientCredentialsGrantRequest(
      as,
      client,
      oauth.None(),
      new URLSearchParams({ resource: rs.uri }),
      insecure,
    );
    assert.equal(
      await refusal(oauth.processClientCredentialsResponse(as, client, res)),
      'unauthorized_client',
    );
  });

  it('refuses a client not registered for the grant (unauthorized_client)', async () => {
    const coder = await addClient(server.stores, { authMethod: 'client_secret_basic' });
    const c = { client: { client_id: coder.clientId }, auth: oauth.ClientSecretBasic(coder.clientSecret!) };
    assert.equal(await refusal(request(c, { resource: rs.uri })), 'unauthorized_client');
  });

  it('is not offered to dynamic registration: a token with no person behind it is an operator decision', async () => {
    const res = await fetch(`${server.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'x',
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_basic',
      }),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: string }).error, 'invalid_client_metadata');
  });

  it('without resource, binds to the only registered resource server (RFC 8707 §2)', async () => {
    const c = await machineClient();
    assert.equal(await refusal(request(c, {})), 'invalid_target');
    await server.stores.resourceServers.delete(other.uri);
    const tokens = await request(c, {});
    assert.equal((await introspect(server.url, rs, tokens.access_token)).active, true);
  });

  it('`latchkey client add --grant-type client_credentials` prints a working id and secret once', {
    skip: kind !== 'postgres' && 'the CLI reaches PGlite only through a running server',
  }, async () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (d) => (out += d));
    stderr.on('data', (d) => (err += d));
    const code = await runCli(
      ['client', 'add', '--name', 'Nightly sync', '--grant-type', 'client_credentials'],
      clientCommands,
      {
        io: { stdin: process.stdin, stdout, stderr },
        env: { DATABASE_URL: server.database.url!, ISSUER: server.url },
      },
    );
    assert.equal(code, 0, err);
    const field = (name: string) => new RegExp(`^${name}: (.+)$`, 'm').exec(out)?.[1];
    assert.equal(field('token_endpoint_auth_method'), 'client_secret_basic');
    assert.equal(field('grant_types'), 'client_credentials');
    const c = {
      client: { client_id: field('client_id')! },
      auth: oauth.ClientSecretBasic(field('client_secret')!),
    };
    const tokens = await request(c, { resource: rs.uri });
    assert.equal((await introspect(server.url, rs, tokens.access_token)).sub, c.client.client_id);
  });
});
