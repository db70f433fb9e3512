// Building blocks for token-exchange and introspection tests of federated sign-ins (test/helpers/federation.ts has
// those of the sign-in pages): a Latchkey configured with
// upstream providers (stand-ins on loopback), real upstream tokens obtained from a stand-in's own endpoints, and a
// Latchkey grant made from an upstream login (stored through the upstream store, encrypted with the app's cipher,
// then the code redeemed at /token as a client would). The sign-in pages are tested elsewhere; these tests start
// where a federated sign-in has happened.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { randomToken } from '../../src/lib/crypto.ts';
import { basicAuth } from './basic-auth.ts';
import { FormBrowser } from './browser.ts';
import { CHALLENGE, exchangeCode, postForm, type TokenResponse } from './flow.ts';
import type { GitHubStandin } from './github-standin.ts';
import type { PlaneStandin } from './plane-standin.ts';
import {
  addClient,
  addResourceServer,
  startServer,
  type TestClient,
  type TestResourceServer,
  type TestServer,
  type TestServerOptions,
} from './server.ts';
import type { UpstreamOidc } from './upstream-oidc.ts';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** A `kid:key` pair for UPSTREAM_TOKEN_KEYS. */
export function tokenKey(kid: string): string {
  return `${kid}:${randomBytes(32).toString('base64url')}`;
}

export function planeProvider(
  plane: PlaneStandin,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id: 'plane',
    type: 'plane',
    client_id: plane.clientId,
    client_secret: plane.clientSecret,
    base_url: plane.baseUrl,
    ...(plane.internalBaseUrl !== plane.baseUrl ? { internal_base_url: plane.internalBaseUrl } : {}),
    create_users: true,
    allow_anyone: true,
    ...extra,
  };
}

export function githubProvider(
  gh: GitHubStandin,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id: 'github',
    type: 'github',
    client_id: gh.clientId,
    client_secret: gh.clientSecret,
    base_url: gh.url,
    api_base_url: gh.url,
    create_users: true,
    allow_anyone: true,
    ...extra,
  };
}

export interface FederatedServerOptions extends TestServerOptions {
  providers: Record<string, unknown>[];
  /** UPSTREAM_TOKEN_KEYS (default: one fresh key). */
  keys?: string;
}

/** Latchkey with these upstream providers, loopback http allowed, keys given. */
export function startFederatedServer(
  kind: Parameters<typeof startServer>[0],
  options: FederatedServerOptions,
): Promise<TestServer> {
  return startServer(kind, {
    ...options,
    env: {
      UPSTREAM_PROVIDERS: JSON.stringify(options.providers),
      UPSTREAM_TOKEN_KEYS: options.keys ?? tokenKey('k1'),
      UPSTREAM_ALLOW_INSECURE_LOOPBACK: 'true',
      ...options.env,
    },
  });
}

export interface UpstreamTokens {
  accessToken: string;
  refreshToken?: string;
  expiresIn?: number;
  scopes: string[];
}

const VERIFIER = randomBytes(32).toString('base64url');

/** Real tokens from the Plane stand-in's own authorize and token endpoints (as Latchkey's callback would get). */
export async function planeTokens(plane: PlaneStandin, redirectUri: string): Promise<UpstreamTokens> {
  if (!plane.redirectUris.includes(redirectUri)) plane.redirectUris.push(redirectUri);
  const url = new URL('/auth/o/authorize-app/', plane.baseUrl);
  const challenge = createHash('sha256').update(VERIFIER).digest('base64url');
  for (const [k, v] of Object.entries({
    client_id: plane.clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'read write',
    state: 's',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }))
    url.searchParams.set(k, v);
  const res = await fetch(url, { redirect: 'manual' });
  const code = new URL(res.headers.get('location')!).searchParams.get('code');
  assert.ok(code, 'the Plane stand-in gave no code');
  const t = await postForm(`${plane.internalBaseUrl}/auth/o/token/`, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    code_verifier: VERIFIER,
    client_id: plane.clientId,
    client_secret: plane.clientSecret,
  });
  assert.equal(t.status, 200);
  return {
    accessToken: String(t.body.access_token),
    refreshToken: String(t.body.refresh_token),
    expiresIn: Number(t.body.expires_in),
    scopes: String(t.body.scope).split(' '),
  };
}

export interface FederatedGrant {
  /** Latchkey's tokens, as the MCP client holds them. */
  accessToken: string;
  refreshToken: string;
  userId: string;
  loginId: string;
  client: TestClient;
  rs: TestResourceServer;
}

export interface FederatedGrantOptions {
  provider: string;
  tokens: UpstreamTokens;
  /** The identity snapshot as the callback stores it; default: a Plane-like one. */
  claims?: Record<string, unknown>;
  subject?: string;
  rs?: TestResourceServer;
  client?: TestClient;
  /** Reuse this login (a second grant from the same sign-in). */
  loginId?: string;
  userId?: string;
}

/** A Latchkey grant made from an upstream login: the login stored as the callback stores it, then a code redeemed. */
export async function federatedGrant(server: TestServer, o: FederatedGrantOptions): Promise<FederatedGrant> {
  const { stores } = server;
  const now = server.clock.now();
  const subject = o.subject ?? randomUUID();
  const rs = o.rs ?? (await addResourceServer(stores, `http://127.0.0.1:9/mcp-${randomToken(4)}`));
  const client = o.client ?? (await addClient(stores));
  let loginId = o.loginId;
  let userId = o.userId;
  if (!loginId) {
    loginId = randomUUID();
    const cipher = server.app.latchkey.upstream.cipher;
    const slot = (column: 'access_token_enc' | 'refresh_token_enc') =>
      ({ table: 'upstream_logins', column, rowId: loginId! }) as const;
    const email = `fed-${randomToken(4).toLowerCase()}@example.com`;
    // The shape the callback stores (claimsSnapshot in src/upstream/flow.ts).
    const claims = o.claims ?? {
      sub: subject,
      email,
      email_verified: false,
      name: 'John Doe',
      username: 'John Doe',
      claims: { workspace_slug: 'acme', workspace_id: 'ws-1', display_name: 'John Doe' },
    };
    const done = await stores.upstream.completeSignIn(
      { kind: 'create', email, name: 'John Doe' },
      { provider: o.provider, subject, email, emailVerified: false },
      {
        id: loginId,
        provider: o.provider,
        scopes: o.tokens.scopes,
        claims: claims as never,
        accessTokenEnc: cipher.encrypt(o.tokens.accessToken, slot('access_token_enc')),
        refreshTokenEnc: o.tokens.refreshToken
          ? cipher.encrypt(o.tokens.refreshToken, slot('refresh_token_enc'))
          : null,
        keyId: cipher.currentKid,
        accessExpiresAt: o.tokens.expiresIn ? new Date(now.getTime() + o.tokens.expiresIn * 1000) : null,
        refreshExpiresAt: null,
      },
      now,
    );
    userId = done.userId;
  }
  const clientRow = await stores.clients.findByClientId(client.clientId);
  const rsRow = await stores.resourceServers.findByUri(rs.uri);
  const code = await stores.grants.createAuthorizationCode(
    {
      userId: userId!,
      clientId: clientRow!.id,
      resourceServerId: rsRow!.id,
      redirectUri: client.redirectUri,
      requestedResource: rs.uri,
      codeChallenge: CHALLENGE,
      scopes: ['mcp'],
      upstreamLoginId: loginId,
    },
    600,
    now,
  );
  const t = await exchangeCode(server, client, code, { resource: rs.uri });
  assert.equal(t.status, 200, JSON.stringify(t.body));
  return {
    accessToken: String(t.body.access_token),
    refreshToken: String(t.body.refresh_token),
    userId: userId!,
    loginId,
    client,
    rs,
  };
}

/** Lets `rs` obtain upstream tokens of these providers and/or see the claims. */
export async function allowUpstream(
  server: TestServer,
  rs: TestResourceServer,
  access: { token?: string[]; claims?: boolean },
): Promise<void> {
  const updated = await server.stores.resourceServers.update(rs.uri, {
    ...(access.token ? { upstreamTokenProviders: access.token } : {}),
    ...(access.claims !== undefined ? { exposeUpstreamClaims: access.claims } : {}),
  });
  assert.ok(updated);
  await server.app.latchkey.changes.flush();
}

/** The token exchange a resource server sends (HTTP Basic unless `as` says otherwise). */
export function exchange(
  issuer: string,
  rs: { clientId: string; clientSecret: string },
  subjectToken: string,
  extra: Record<string, string> = {},
): Promise<TokenResponse> {
  return postForm(
    `${issuer}/token`,
    {
      grant_type: TOKEN_EXCHANGE,
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      ...extra,
    },
    { authorization: basicAuth(rs.clientId, rs.clientSecret) },
  );
}

export function oidcProvider(op: UpstreamOidc, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'corp',
    type: 'oidc',
    name: 'Corp SSO',
    issuer: op.issuer,
    client_id: op.clientId,
    client_secret: op.clientSecret,
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    create_users: true,
    allow_anyone: true,
    ...extra,
  };
}

/** Real tokens from the OIDC upstream: code + PKCE through its devInteractions, as `sub`. */
export async function oidcTokens(
  op: UpstreamOidc,
  redirectUri: string,
  sub: string,
): Promise<UpstreamTokens> {
  const issuer = new URL(op.issuer);
  const opts = { [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, opts));
  const client: oauth.Client = { client_id: op.clientId };
  const verifier = oauth.generateRandomCodeVerifier();
  const url = new URL(as.authorization_endpoint!);
  for (const [k, v] of Object.entries({
    client_id: op.clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid email profile offline_access',
    state: 'st',
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    prompt: 'consent',
  }))
    url.searchParams.set(k, v);
  // A browser whose issuer is elsewhere: the redirect back to the callback is returned, not followed.
  const browser = new FormBrowser('http://127.0.0.1:9');
  const back = await op.signIn(browser, await browser.request(url.href), sub);
  assert.ok(back.redirectedTo, 'the upstream did not redirect back');
  const params = oauth.validateAuthResponse(as, client, new URL(back.redirectedTo), 'st');
  const t = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.ClientSecretBasic(op.clientSecret),
      params,
      redirectUri,
      verifier,
      opts,
    ),
  );
  assert.ok(t.refresh_token, 'no refresh token from the OIDC upstream');
  return {
    accessToken: t.access_token,
    refreshToken: t.refresh_token,
    ...(t.expires_in !== undefined ? { expiresIn: t.expires_in } : {}),
    scopes: (t.scope ?? '').split(' ').filter(Boolean),
  };
}

/** Every row of every table, as text (for "no plaintext secret at rest" checks). */
export async function databaseText(server: TestServer): Promise<string> {
  return server.database.db.withConnection(async (c) => {
    const tables = await c.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );
    let text = '';
    for (const { table_name } of tables) {
      const rows = await c.query<{ row: string }>(`SELECT t::text AS row FROM "${table_name}" t`);
      text += `${rows.map((r) => r.row).join('\n')}\n`;
    }
    return text;
  });
}
