// The Plane preset (spec federation §10): authorize at `{base_url}/auth/o/authorize-app/` (browser-facing), token,
// users/me and app-installation at `internal_base_url` (server to server), client_secret_post, PKCE. The user token
// is scoped to the one workspace chosen on Plane's consent page: the installation names it.
import type { PlaneProvider } from '../config.ts';
import { getJson } from '../http.ts';
import { staticServerProvider } from './base.ts';
import type { IdentityOutcome, ProviderDeps, UpstreamProvider } from './types.ts';

interface Installation {
  id?: unknown;
  status?: unknown;
  workspace?: unknown;
  workspace_detail?: { id?: unknown; name?: unknown; slug?: unknown };
}

const NOT_INSTALLED = 'The Plane app is not installed in the workspace you chose.';
const WHICH_WORKSPACE = 'Plane did not say which workspace you chose.';

export function planeProvider(config: PlaneProvider, deps: ProviderDeps): UpstreamProvider {
  const as = {
    issuer: config.baseUrl,
    authorization_endpoint: `${config.baseUrl}/auth/o/authorize-app/`,
    token_endpoint: `${config.internalBaseUrl}/auth/o/token/`,
  };
  const text = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : null);
  return {
    ...staticServerProvider(config, deps, as),
    async fetchIdentity(_as, tokens, callback): Promise<IdentityOutcome> {
      const headers = { authorization: `Bearer ${tokens.accessToken}`, accept: 'application/json' };
      const me = await getJson(deps.fetch, `${config.internalBaseUrl}/api/v1/users/me/`, headers);
      if (me.kind === 'unavailable') return me;
      if (me.kind === 'status') return { kind: 'rejected', reason: `users/me status ${me.status}` };
      const installs = await getJson(
        deps.fetch,
        `${config.internalBaseUrl}/auth/o/app-installation/`,
        headers,
      );
      if (installs.kind === 'unavailable') return installs;
      if (installs.kind === 'status')
        return { kind: 'rejected', reason: `app-installation status ${installs.status}` };
      const list = (Array.isArray(installs.body) ? installs.body : []) as Installation[];
      const wanted = callback.get('app_installation_id');
      let chosen: Installation | undefined;
      if (list.length === 0) return { kind: 'refused', status: 403, message: NOT_INSTALLED };
      if (wanted) chosen = list.find((i) => String(i.id) === wanted);
      else if (list.length === 1) chosen = list[0];
      else {
        const allowed = list.filter((i) =>
          config.allowedWorkspaces?.includes(String(i.workspace_detail?.slug ?? '')),
        );
        if (allowed.length === 1) chosen = allowed[0];
      }
      if (!chosen) return { kind: 'refused', status: 502, message: WHICH_WORKSPACE };
      if (chosen.status !== 'installed') return { kind: 'refused', status: 403, message: NOT_INSTALLED };
      const user = (me.body ?? {}) as Record<string, unknown>;
      const first = text(user.first_name);
      const last = text(user.last_name);
      const display = text(user.display_name);
      const detail = chosen.workspace_detail ?? {};
      return {
        kind: 'ok',
        identity: {
          subject: typeof user.id === 'string' || typeof user.id === 'number' ? String(user.id) : '',
          email: text(user.email)?.toLowerCase() ?? null,
          emailVerified: config.trustEmail,
          name: display ?? ([first, last].filter(Boolean).join(' ') || null),
          username: display,
          extra: {
            workspace_id: String(detail.id ?? chosen.workspace ?? ''),
            workspace_slug: text(detail.slug),
            workspace_name: text(detail.name),
            installation_id: String(chosen.id ?? ''),
            first_name: first,
            last_name: last,
            display_name: display,
            avatar_url: text(user.avatar_url) ?? text(user.avatar),
          },
        },
      };
    },
  };
}
