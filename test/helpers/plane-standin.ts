// A stand-in for Plane's OAuth app endpoints, exactly the rows of spec §10 marked documented or seen (Plane runs
// Django OAuth Toolkit): the authorize page (which here approves at once as `signedInAs`, in `chosenWorkspace`),
// the token endpoint (authorization_code with S256 PKCE and single-use codes, refresh_token with rotation
// switchable; client_secret_post or Basic), `GET /api/v1/users/me/` and `GET /auth/o/app-installation/`.
// Knobs (mutable fields): deny, rotation, revokeAll, installations (0/1/2), installationStatus,
// sendInstallationId, expiresIn, clientSecret; faults (slow, status5xx, status per endpoint) and setDown() come from
// StandinHost. With `split: true` it listens twice: `baseUrl` for the browser, `internalBaseUrl` for the server
// calls (each request records `via`).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { bearer, clientCredentials, StandinHost } from './standin.ts';

export type PlaneEndpoint = 'authorize' | 'token' | 'me' | 'installations';

export interface PlaneUser {
  id: string;
  email: string;
  first_name: string;
  last_name: string;
  display_name: string;
  avatar: string;
  avatar_url: string;
}

export interface PlaneWorkspace {
  id: string;
  slug: string;
  name: string;
  /** The id of the app's installation in this workspace. */
  installationId: string;
}

interface Code {
  clientId: string;
  redirectUri: string;
  challenge: string | undefined;
  userId: string;
  workspace: string;
  scope: string;
  expiresAt: number;
  used: boolean;
}

interface IssuedToken {
  userId: string;
  workspace: string;
  scope: string;
  active: boolean;
}

export interface PlaneStandinOptions {
  clientId?: string;
  clientSecret?: string;
  redirectUris?: string[];
  /** Listen on two ports (browser-facing and internal). */
  split?: boolean;
}

export function planeUser(overrides: Partial<PlaneUser> = {}): PlaneUser {
  const id = overrides.id ?? randomUUID();
  return {
    id,
    email: `plane-${id.slice(0, 8)}@example.com`,
    first_name: 'John',
    last_name: 'Doe',
    display_name: 'John Doe',
    avatar: '',
    avatar_url: `https://avatars.example.com/${id}`,
    ...overrides,
  };
}

export class PlaneStandin {
  readonly host = new StandinHost<PlaneEndpoint>(['authorize'], (status) =>
    status === 401 ? { detail: 'Authentication credentials were not provided.' } : { error: 'server_error' },
  );
  readonly clientId: string;
  clientSecret: string;
  readonly redirectUris: string[];
  readonly users = new Map<string, PlaneUser>();
  readonly workspaces: PlaneWorkspace[] = [
    { id: randomUUID(), slug: 'acme', name: 'Acme', installationId: randomUUID() },
    { id: randomUUID(), slug: 'beta', name: 'Beta', installationId: randomUUID() },
  ];
  /** The user the authorize page signs in (default: the first user). */
  signedInAs: string | undefined;
  /** The workspace picked on Plane's consent page. */
  chosenWorkspace = 'acme';
  deny = false;
  rotation = true;
  revokeAll = false;
  installations: 0 | 1 | 2 = 1;
  installationStatus = 'installed';
  sendInstallationId = false;
  expiresIn = 86400;
  readonly codes = new Map<string, Code>();
  readonly accessTokens = new Map<string, IssuedToken>();
  readonly refreshTokens = new Map<string, IssuedToken>();

  private constructor(options: PlaneStandinOptions) {
    this.clientId = options.clientId ?? `plane-client-${randomBytes(4).toString('hex')}`;
    this.clientSecret = options.clientSecret ?? randomBytes(24).toString('base64url');
    this.redirectUris = options.redirectUris ?? [];
    this.routes();
  }

  static async start(options: PlaneStandinOptions = {}): Promise<PlaneStandin> {
    const standin = new PlaneStandin(options);
    await standin.host.listen(options.split ? ['main', 'internal'] : ['main']);
    return standin;
  }

  /** Browser-facing base URL (the provider's `base_url`). */
  get baseUrl(): string {
    return this.host.urls.main!;
  }
  /** Server-to-server base URL (`internal_base_url`; the same as baseUrl unless split). */
  get internalBaseUrl(): string {
    return this.host.urls.internal ?? this.host.urls.main!;
  }
  get requests() {
    return this.host.requests;
  }
  get faults() {
    return this.host.faults;
  }
  recorded(endpoint: PlaneEndpoint) {
    return this.host.recorded(endpoint);
  }
  /** Refresh requests received (any outcome). */
  get refreshCount(): number {
    return this.host
      .recorded('token')
      .filter((r) => (r.body as Record<string, unknown> | undefined)?.grant_type === 'refresh_token').length;
  }
  /** Every access token issued (for "never leaked" assertions). */
  get issuedAccessTokens(): string[] {
    return [...this.accessTokens.keys()];
  }
  setDown(down: boolean) {
    return this.host.setDown(down);
  }
  close() {
    return this.host.close();
  }

  addUser(overrides: Partial<PlaneUser> = {}): PlaneUser {
    const user = planeUser(overrides);
    this.users.set(user.id, user);
    this.signedInAs ??= user.id;
    return user;
  }

  private issue(userId: string, workspace: string, scope: string) {
    const access = `plane_at_${randomBytes(24).toString('base64url')}`;
    const refresh = `plane_rt_${randomBytes(24).toString('base64url')}`;
    this.accessTokens.set(access, { userId, workspace, scope, active: true });
    this.refreshTokens.set(refresh, { userId, workspace, scope, active: true });
    return { access, refresh };
  }

  private routes(): void {
    const app = this.host.app;
    app.get('/auth/o/authorize-app/', { config: { endpoint: 'authorize' } }, async (request, reply) => {
      const q = request.query as Record<string, string | undefined>;
      if (q.client_id !== this.clientId || !q.redirect_uri || !this.redirectUris.includes(q.redirect_uri)) {
        return reply.code(400).type('text/html').send('<h1>Invalid client or redirect URI</h1>');
      }
      const back = new URL(q.redirect_uri);
      if (q.state !== undefined) back.searchParams.set('state', q.state);
      if (this.deny) {
        back.searchParams.set('error', 'access_denied');
        return reply.redirect(back.href, 302);
      }
      if (q.response_type !== 'code') {
        back.searchParams.set('error', 'unsupported_response_type');
        return reply.redirect(back.href, 302);
      }
      if (q.code_challenge !== undefined && q.code_challenge_method !== 'S256') {
        back.searchParams.set('error', 'invalid_request');
        return reply.redirect(back.href, 302);
      }
      const userId = this.signedInAs;
      if (!userId || !this.users.has(userId)) throw new Error('PlaneStandin: no user to sign in (addUser)');
      const code = randomBytes(20).toString('base64url');
      this.codes.set(code, {
        clientId: this.clientId,
        redirectUri: q.redirect_uri,
        challenge: q.code_challenge,
        userId,
        workspace: this.chosenWorkspace,
        scope: q.scope ?? 'read',
        expiresAt: Date.now() + 60_000,
        used: false,
      });
      back.searchParams.set('code', code);
      if (this.sendInstallationId) {
        const ws = this.workspaces.find((w) => w.slug === this.chosenWorkspace);
        if (ws) back.searchParams.set('app_installation_id', ws.installationId);
      }
      return reply.redirect(back.href, 302);
    });

    app.post('/auth/o/token/', { config: { endpoint: 'token' } }, async (request, reply) => {
      const body = (request.body ?? {}) as Record<string, string | undefined>;
      const creds = clientCredentials(request);
      if (!creds || creds.id !== this.clientId || creds.secret !== this.clientSecret) {
        return reply.code(401).send({ error: 'invalid_client' });
      }
      const invalidGrant = () => reply.code(400).send({ error: 'invalid_grant' });
      let issued: IssuedToken;
      let refreshOut: string;
      if (body.grant_type === 'authorization_code') {
        const code = body.code ? this.codes.get(body.code) : undefined;
        if (!code || code.used || code.expiresAt < Date.now() || code.redirectUri !== body.redirect_uri) {
          return invalidGrant();
        }
        code.used = true;
        if (code.challenge !== undefined) {
          const verifier = body.code_verifier ?? '';
          if (createHash('sha256').update(verifier).digest('base64url') !== code.challenge)
            return invalidGrant();
        }
        issued = { userId: code.userId, workspace: code.workspace, scope: code.scope, active: true };
        const { access, refresh } = this.issue(code.userId, code.workspace, code.scope);
        return reply.header('cache-control', 'no-store').send(this.tokenBody(access, refresh, issued.scope));
      }
      if (body.grant_type === 'refresh_token') {
        const old = body.refresh_token ? this.refreshTokens.get(body.refresh_token) : undefined;
        if (!old?.active || this.revokeAll) return invalidGrant();
        const { access, refresh } = this.issue(old.userId, old.workspace, old.scope);
        if (this.rotation) {
          old.active = false;
          refreshOut = refresh;
        } else {
          this.refreshTokens.delete(refresh);
          refreshOut = body.refresh_token!;
        }
        return reply.header('cache-control', 'no-store').send(this.tokenBody(access, refreshOut, old.scope));
      }
      return reply.code(400).send({ error: 'unsupported_grant_type' });
    });

    const authed = (request: Parameters<typeof bearer>[0]) => {
      const token = bearer(request);
      const found = token ? this.accessTokens.get(token) : undefined;
      return found?.active ? found : undefined;
    };

    app.get('/api/v1/users/me/', { config: { endpoint: 'me' } }, async (request, reply) => {
      const token = authed(request);
      if (!token) return reply.code(401).send({ detail: 'Authentication credentials were not provided.' });
      return this.users.get(token.userId);
    });

    app.get(
      '/auth/o/app-installation/',
      { config: { endpoint: 'installations' } },
      async (request, reply) => {
        const token = authed(request);
        if (!token) return reply.code(401).send({ detail: 'Authentication credentials were not provided.' });
        const chosen = this.workspaces.find((w) => w.slug === token.workspace) ?? this.workspaces[0]!;
        const others = this.workspaces.filter((w) => w !== chosen);
        return [chosen, ...others].slice(0, this.installations).map((w) => ({
          id: w.installationId,
          workspace: w.id,
          workspace_detail: { id: w.id, name: w.name, slug: w.slug, logo_url: null },
          app_bot: randomUUID(),
          status: this.installationStatus,
          created_at: '2026-11-01T00:00:00Z',
        }));
      },
    );
  }

  private tokenBody(access: string, refresh: string, scope: string) {
    return {
      access_token: access,
      refresh_token: refresh,
      token_type: 'Bearer',
      expires_in: this.expiresIn,
      scope,
    };
  }
}
