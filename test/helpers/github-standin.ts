// A stand-in for GitHub's OAuth web flow and the few REST endpoints sign-in needs (spec §10, GitHub's OAuth docs):
// `GET /login/oauth/authorize` (approves at once as `signedInAs`), `POST /login/oauth/access_token` (JSON only with
// `Accept: application/json`, otherwise form-encoded; errors such as bad_verification_code come back with HTTP 200
// and an `error` field; `scope` comma-separated), `GET /user`, `GET /user/emails`, `GET /user/orgs` and
// `DELETE /applications/:client_id/grant`. Two token modes: OAuth-app tokens (no expiry, no refresh token) and
// GitHub-App expiring user tokens (expires_in 28800, a rotating refresh token, refresh_token_expires_in 15897600).
// The same origin serves github.com and api.github.com paths (configure base_url and api_base_url to it).
import { createHash, randomBytes } from 'node:crypto';
import { bearer, clientCredentials, StandinHost } from './standin.ts';

export type GitHubEndpoint = 'authorize' | 'token' | 'user' | 'emails' | 'orgs' | 'revoke';

export interface GitHubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
  visibility: 'public' | 'private' | null;
}

export interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
  /** The public email (may be null). */
  email: string | null;
  emails: GitHubEmail[];
  orgs: string[];
}

interface IssuedToken {
  userId: number;
  scope: string;
  active: boolean;
}

export interface GitHubStandinOptions {
  clientId?: string;
  clientSecret?: string;
  redirectUris?: string[];
  /** Expiring user tokens with refresh tokens (GitHub Apps); default false (OAuth-app tokens). */
  expiring?: boolean;
}

let nextId = 1000;

export function gitHubUser(overrides: Partial<GitHubUser> = {}): GitHubUser {
  const id = overrides.id ?? nextId++;
  const login = overrides.login ?? `octo${id}`;
  return {
    id,
    login,
    name: 'Octo Cat',
    email: null,
    emails: [{ email: `${login}@example.com`, primary: true, verified: true, visibility: 'private' }],
    orgs: [],
    ...overrides,
  };
}

export class GitHubStandin {
  readonly host = new StandinHost<GitHubEndpoint>(['authorize'], (status) => ({
    message: status === 401 ? 'Bad credentials' : status === 403 ? 'Forbidden' : 'Server Error',
    documentation_url: 'https://docs.github.com/rest',
  }));
  readonly clientId: string;
  clientSecret: string;
  readonly redirectUris: string[];
  readonly users = new Map<number, GitHubUser>();
  signedInAs: number | undefined;
  expiring: boolean;
  deny = false;
  /** Every refresh answers 200 {"error":"bad_refresh_token"}. */
  revokeAll = false;
  /** Force this 200-with-error answer on the next code exchanges (e.g. 'bad_verification_code'). */
  tokenError: string | false = false;
  readonly codes = new Map<
    string,
    {
      redirectUri: string | undefined;
      challenge: string | undefined;
      userId: number;
      scope: string;
      used: boolean;
    }
  >();
  readonly accessTokens = new Map<string, IssuedToken>();
  readonly refreshTokens = new Map<string, IssuedToken>();

  private constructor(options: GitHubStandinOptions) {
    this.clientId = options.clientId ?? `Iv1.${randomBytes(8).toString('hex')}`;
    this.clientSecret = options.clientSecret ?? randomBytes(20).toString('hex');
    this.redirectUris = options.redirectUris ?? [];
    this.expiring = options.expiring ?? false;
    this.routes();
  }

  static async start(options: GitHubStandinOptions = {}): Promise<GitHubStandin> {
    const standin = new GitHubStandin(options);
    await standin.host.listen();
    return standin;
  }

  get url(): string {
    return this.host.urls.main!;
  }
  get requests() {
    return this.host.requests;
  }
  get faults() {
    return this.host.faults;
  }
  recorded(endpoint: GitHubEndpoint) {
    return this.host.recorded(endpoint);
  }
  get refreshCount(): number {
    return this.host
      .recorded('token')
      .filter((r) => (r.body as Record<string, unknown> | undefined)?.grant_type === 'refresh_token').length;
  }
  get issuedAccessTokens(): string[] {
    return [...this.accessTokens.keys()];
  }
  setDown(down: boolean) {
    return this.host.setDown(down);
  }
  close() {
    return this.host.close();
  }

  addUser(overrides: Partial<GitHubUser> = {}): GitHubUser {
    const user = gitHubUser(overrides);
    this.users.set(user.id, user);
    this.signedInAs ??= user.id;
    return user;
  }

  private tokenAnswer(
    accept: string | undefined,
    fields: Record<string, string | number>,
  ): { type: string; body: string } {
    if ((accept ?? '').includes('application/json'))
      return { type: 'application/json', body: JSON.stringify(fields) };
    const form = new URLSearchParams(
      Object.entries(fields).map(([k, v]): [string, string] => [k, String(v)]),
    );
    return { type: 'application/x-www-form-urlencoded; charset=utf-8', body: form.toString() };
  }

  private issue(userId: number, scope: string): Record<string, string | number> {
    const access = `${this.expiring ? 'ghu' : 'gho'}_${randomBytes(18).toString('hex')}`;
    this.accessTokens.set(access, { userId, scope, active: true });
    const out: Record<string, string | number> = { access_token: access, token_type: 'bearer', scope };
    if (this.expiring) {
      const refresh = `ghr_${randomBytes(30).toString('hex')}`;
      this.refreshTokens.set(refresh, { userId, scope, active: true });
      Object.assign(out, { expires_in: 28800, refresh_token: refresh, refresh_token_expires_in: 15897600 });
    }
    return out;
  }

  private routes(): void {
    const app = this.host.app;
    app.get('/login/oauth/authorize', { config: { endpoint: 'authorize' } }, async (request, reply) => {
      const q = request.query as Record<string, string | undefined>;
      if (q.client_id !== this.clientId) return reply.code(404).type('text/html').send('<h1>Not Found</h1>');
      const redirectUri = q.redirect_uri ?? this.redirectUris[0];
      if (!redirectUri || !this.redirectUris.includes(redirectUri)) {
        return reply
          .code(400)
          .type('text/html')
          .send('<h1>The redirect_uri is not associated with this application.</h1>');
      }
      const back = new URL(redirectUri);
      if (this.deny) {
        back.searchParams.set('error', 'access_denied');
        back.searchParams.set('error_description', 'The user has denied your application access.');
      } else {
        const userId = this.signedInAs;
        if (userId === undefined || !this.users.has(userId))
          throw new Error('GitHubStandin: no user (addUser)');
        const code = randomBytes(10).toString('hex');
        // GitHub's scope list is comma-separated in token answers.
        const scope = (q.scope ?? '')
          .split(/[\s,]+/)
          .filter(Boolean)
          .join(',');
        this.codes.set(code, {
          redirectUri: q.redirect_uri,
          challenge: q.code_challenge,
          userId,
          scope,
          used: false,
        });
        back.searchParams.set('code', code);
      }
      if (q.state !== undefined) back.searchParams.set('state', q.state);
      return reply.redirect(back.href, 302);
    });

    app.post('/login/oauth/access_token', { config: { endpoint: 'token' } }, async (request, reply) => {
      const body = (request.body ?? {}) as Record<string, string | undefined>;
      const send = (fields: Record<string, string | number>) => {
        const { type, body: text } = this.tokenAnswer(request.headers.accept, fields);
        return reply.code(200).type(type).send(text);
      };
      const error = (code: string, description: string) =>
        send({ error: code, error_description: description, error_uri: `https://docs.github.com/${code}` });
      const creds = clientCredentials(request);
      if (!creds || creds.id !== this.clientId || creds.secret !== this.clientSecret) {
        return error(
          'incorrect_client_credentials',
          'The client_id and/or client_secret passed are incorrect.',
        );
      }
      if (body.grant_type === 'refresh_token') {
        const old = body.refresh_token ? this.refreshTokens.get(body.refresh_token) : undefined;
        if (!old?.active || this.revokeAll) {
          return error('bad_refresh_token', 'The refresh token passed is incorrect or expired.');
        }
        old.active = false; // GitHub rotates: the old refresh token is spent
        return send(this.issue(old.userId, old.scope));
      }
      if (this.tokenError) return error(this.tokenError, 'The code passed is incorrect or expired.');
      const code = body.code ? this.codes.get(body.code) : undefined;
      if (!code || code.used)
        return error('bad_verification_code', 'The code passed is incorrect or expired.');
      if (code.redirectUri !== undefined && body.redirect_uri !== code.redirectUri) {
        return error('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL.');
      }
      code.used = true;
      if (code.challenge !== undefined) {
        const verifier = body.code_verifier ?? '';
        if (createHash('sha256').update(verifier).digest('base64url') !== code.challenge) {
          return error('bad_verification_code', 'The code passed is incorrect or expired.');
        }
      }
      return send(this.issue(code.userId, code.scope));
    });

    const user = (request: Parameters<typeof bearer>[0]) => {
      const token = bearer(request);
      const found = token ? this.accessTokens.get(token) : undefined;
      return found?.active ? this.users.get(found.userId) : undefined;
    };
    const badCredentials = { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' };

    app.get('/user', { config: { endpoint: 'user' } }, async (request, reply) => {
      const u = user(request);
      if (!u) return reply.code(401).send(badCredentials);
      return {
        login: u.login,
        id: u.id,
        node_id: `U_${u.id}`,
        avatar_url: `https://avatars.githubusercontent.com/u/${u.id}`,
        html_url: `https://github.com/${u.login}`,
        type: 'User',
        name: u.name,
        email: u.email,
      };
    });
    app.get('/user/emails', { config: { endpoint: 'emails' } }, async (request, reply) => {
      const u = user(request);
      if (!u) return reply.code(401).send(badCredentials);
      return u.emails;
    });
    app.get('/user/orgs', { config: { endpoint: 'orgs' } }, async (request, reply) => {
      const u = user(request);
      if (!u) return reply.code(401).send(badCredentials);
      return u.orgs.map((login, i) => ({ login, id: 9000 + i }));
    });
    app.delete(
      '/applications/:clientId/grant',
      { config: { endpoint: 'revoke' } },
      async (request, reply) => {
        const creds = clientCredentials(request);
        const { clientId } = request.params as { clientId: string };
        if (creds?.method !== 'basic' || creds.id !== this.clientId || creds.secret !== this.clientSecret) {
          return reply.code(401).send(badCredentials);
        }
        if (clientId !== this.clientId) return reply.code(404).send({ message: 'Not Found' });
        const token = (request.body as { access_token?: unknown } | undefined)?.access_token;
        const found = typeof token === 'string' ? this.accessTokens.get(token) : undefined;
        if (!found) return reply.code(422).send({ message: 'Validation Failed' });
        for (const t of [...this.accessTokens.values(), ...this.refreshTokens.values()]) {
          if (t.userId === found.userId) t.active = false;
        }
        return reply.code(204).send();
      },
    );
  }
}
