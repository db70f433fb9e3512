// A real OpenID Provider as the upstream of federation tests: oidc-provider@9.13.3 (panva) on 127.0.0.1, with one
// confidential client whose redirect URI is Latchkey's callback, accounts from an in-test map, devInteractions (its
// login form accepts any login name, which is taken as the account's `sub`), revocation, PKCE required, a refresh
// token on every code, and refresh-token rotation as a parameter (with rotation, oidc-provider treats a second use of
// a rotated refresh token as reuse and revokes the grant, so a duplicate refresh fails loudly).
// A FormBrowser signs in headlessly with `signIn`: it follows the upstream's redirects and submits its forms.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import Provider from 'oidc-provider';
import { type FormBrowser, type PageResult, parseForms } from './browser.ts';

export interface UpstreamAccount {
  email?: string;
  email_verified?: boolean;
  name?: string;
}

export interface UpstreamOidcOptions {
  /** Latchkey's callback URI(s) registered for the client (start Latchkey's port with freePort first). */
  redirectUris: string[];
  clientId?: string;
  clientSecret?: string;
  /** Rotate refresh tokens on use (default false, oidc-provider's default for a confidential client). */
  rotateRefreshToken?: boolean;
  /** Access token lifetime in seconds (default 3600). */
  accessTokenTtl?: number;
  /** `sub` → account claims; the test may add to it at any time. */
  accounts?: Map<string, UpstreamAccount>;
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post';
}

export interface RecordedUpstreamRequest {
  method: string;
  path: string;
  query: Record<string, string>;
}

export interface UpstreamOidc {
  issuer: string;
  port: number;
  clientId: string;
  clientSecret: string;
  accounts: Map<string, UpstreamAccount>;
  /** Every request the provider received (method, path, query; bodies are not read). */
  requests: RecordedUpstreamRequest[];
  /** Token requests with grant_type=refresh_token, successful or not. */
  refreshes: { ok: boolean; error?: string }[];
  /** Successful token responses' access tokens, in order (for "never leaked" assertions). */
  issuedAccessTokens: string[];
  /** Refuses connections (true) or accepts them again on the same port (false). */
  setDown(down: boolean): Promise<void>;
  /**
   * From a page that sent the browser to the upstream (`page.redirectedTo` or an upstream page), signs in as `sub`
   * and consents, until the upstream sends the browser back to Latchkey. Returns that page.
   */
  signIn(browser: FormBrowser, page: PageResult, sub: string): Promise<PageResult>;
  close(): Promise<void>;
}

export async function startUpstreamOidc(options: UpstreamOidcOptions): Promise<UpstreamOidc> {
  const accounts = options.accounts ?? new Map<string, UpstreamAccount>();
  const clientId = options.clientId ?? 'latchkey-test';
  const clientSecret = options.clientSecret ?? randomBytes(24).toString('base64url');
  const requests: RecordedUpstreamRequest[] = [];
  const refreshes: { ok: boolean; error?: string }[] = [];
  const issuedAccessTokens: string[] = [];
  const sockets = new Set<Socket>();

  let handler: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream.invalid');
    requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
    });
    if (url.pathname === '/token') captureAccessTokens(res, issuedAccessTokens);
    handler!(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: options.redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: options.tokenEndpointAuthMethod ?? 'client_secret_basic',
      },
    ],
    async findAccount(_ctx: unknown, sub: string) {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, ...accounts.get(sub) };
        },
      };
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    features: { devInteractions: { enabled: true }, revocation: { enabled: true } },
    pkce: { required: () => true },
    issueRefreshToken: () => true,
    rotateRefreshToken: () => options.rotateRefreshToken ?? false,
    ttl: {
      AccessToken: options.accessTokenTtl ?? 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 14 * 86400,
      Interaction: 600,
      Session: 86400,
      Grant: 14 * 86400,
    },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
  });
  provider.on('grant.success', (ctx) => {
    if (ctx.oidc.params?.grant_type === 'refresh_token') refreshes.push({ ok: true });
  });
  provider.on('grant.error', (ctx, error) => {
    if (ctx.oidc.params?.grant_type === 'refresh_token')
      refreshes.push({ ok: false, error: error.error ?? '' });
  });
  handler = provider.callback();

  async function setDown(down: boolean): Promise<void> {
    if (down === !server.listening) return;
    if (down) {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const s of sockets) s.destroy();
      await closed;
    } else {
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
    }
  }

  async function signIn(browser: FormBrowser, page: PageResult, sub: string): Promise<PageResult> {
    browser.follow(issuer);
    let current = page.redirectedTo ? await browser.request(page.redirectedTo) : page;
    for (let step = 0; step < 6; step++) {
      if (new URL(current.url).origin !== issuer || current.redirectedTo) return current;
      const form = parseForms(current.html).find((f) => f.fields.some((x) => x.name === 'prompt'));
      assert.ok(form, `no interaction form on the upstream page ${current.url} (${current.status})`);
      const prompt = form.fields.find((x) => x.name === 'prompt')!.value;
      current = await browser.submit(
        current,
        form.action,
        prompt === 'login' ? { login: sub, password: 'any' } : {},
      );
    }
    throw new Error('the upstream did not send the browser back');
  }

  return {
    issuer,
    port,
    clientId,
    clientSecret,
    accounts,
    requests,
    refreshes,
    issuedAccessTokens,
    setDown,
    signIn,
    async close() {
      await setDown(true);
    },
  };
}

/** Reads access tokens out of the token endpoint's JSON answers as they are written (the provider is untouched). */
function captureAccessTokens(res: http.ServerResponse, into: string[]): void {
  const chunks: Buffer[] = [];
  const write = res.write.bind(res);
  const end = res.end.bind(res);
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (chunk) chunks.push(Buffer.from(chunk as string));
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof res.write;
  res.end = ((chunk?: unknown, ...rest: unknown[]) => {
    if (chunk && typeof chunk !== 'function') chunks.push(Buffer.from(chunk as string));
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { access_token?: unknown };
      if (typeof body.access_token === 'string') into.push(body.access_token);
    } catch {
      // not JSON: an error page, nothing to capture
    }
    return (end as (...a: unknown[]) => http.ServerResponse)(chunk, ...rest);
  }) as typeof res.end;
}
