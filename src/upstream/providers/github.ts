// The GitHub preset: authorize and token at `base_url` (/login/oauth/…, JSON with Accept: application/json, errors
// as 200 with an `error` field), the identity from `api_base_url`: /user (the numeric id is the subject, never the
// login, which can be renamed), /user/emails (the primary verified one), /user/orgs for allowed_orgs.
import type { GithubProvider } from '../config.ts';
import { getJson } from '../http.ts';
import { staticServerProvider } from './base.ts';
import type { IdentityOutcome, ProviderDeps, UpstreamProvider } from './types.ts';

export function githubProvider(config: GithubProvider, deps: ProviderDeps): UpstreamProvider {
  const as = {
    issuer: config.baseUrl,
    authorization_endpoint: `${config.baseUrl}/login/oauth/authorize`,
    token_endpoint: `${config.baseUrl}/login/oauth/access_token`,
  };
  const text = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : null);
  return {
    ...staticServerProvider(config, deps, as),
    // GitHub's revocation: DELETE /applications/{client_id}/grant (Basic client credentials), which ends the grant.
    async revoke(tokens) {
      const basic = Buffer.from(`${config.clientId}:${config.clientSecret ?? ''}`).toString('base64');
      try {
        await deps.fetch(`${config.apiBaseUrl}/applications/${encodeURIComponent(config.clientId)}/grant`, {
          method: 'DELETE',
          headers: {
            authorization: `Basic ${basic}`,
            accept: 'application/vnd.github+json',
            'content-type': 'application/json',
            'user-agent': 'latchkey',
          },
          body: JSON.stringify({ access_token: tokens.accessToken }),
        });
      } catch (err) {
        deps.log.warn(
          { provider: config.id, cause: (err as Error).message },
          'upstream token revocation failed',
        );
      }
    },
    async fetchIdentity(_as, tokens): Promise<IdentityOutcome> {
      const headers = {
        authorization: `Bearer ${tokens.accessToken}`,
        accept: 'application/vnd.github+json',
        'user-agent': 'latchkey',
      };
      const user = await getJson(deps.fetch, `${config.apiBaseUrl}/user`, headers);
      if (user.kind === 'unavailable') return user;
      if (user.kind === 'status') return { kind: 'rejected', reason: `user status ${user.status}` };
      const u = (user.body ?? {}) as Record<string, unknown>;
      let email = text(u.email);
      let emailVerified = false;
      const emails = await getJson(deps.fetch, `${config.apiBaseUrl}/user/emails`, headers);
      if (emails.kind === 'unavailable') return emails;
      if (emails.kind === 'ok' && Array.isArray(emails.body)) {
        const primary = (emails.body as Record<string, unknown>[]).find(
          (e) => e.primary === true && e.verified === true,
        );
        if (primary && text(primary.email)) {
          email = text(primary.email);
          emailVerified = true;
        }
      }
      if (config.allowedOrgs) {
        const orgs = await getJson(deps.fetch, `${config.apiBaseUrl}/user/orgs`, headers);
        if (orgs.kind === 'unavailable') return orgs;
        const logins =
          orgs.kind === 'ok' && Array.isArray(orgs.body)
            ? orgs.body.map((o) => String((o as { login?: unknown }).login).toLowerCase())
            : [];
        if (!config.allowedOrgs.some((o) => logins.includes(o.toLowerCase())))
          return {
            kind: 'refused',
            status: 403,
            message: 'Your GitHub account is not in an organization allowed here.',
          };
      }
      const login = text(u.login);
      return {
        kind: 'ok',
        identity: {
          subject: typeof u.id === 'number' || typeof u.id === 'string' ? String(u.id) : '',
          email: email?.toLowerCase() ?? null,
          emailVerified,
          name: text(u.name) ?? login,
          username: login,
          extra: { login, avatar_url: text(u.avatar_url), html_url: text(u.html_url) },
        },
      };
    },
  };
}
