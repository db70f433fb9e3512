// Generic OAuth 2 with a userinfo URL: endpoints from the configuration, the identity from a GET of userinfo mapped
// through dot paths (subject_claim, email_claim, email_verified_claim, name_claim, username_claim).
import type { OAuth2Provider } from '../config.ts';
import { getJson } from '../http.ts';
import { revokeAt, staticServerProvider } from './base.ts';
import { isVerified } from './oidc.ts';
import type { IdentityOutcome, ProviderDeps, UpstreamProvider } from './types.ts';

/** The value at a dot path ("data.user.id") of a JSON object. */
export function atPath(body: unknown, path: string): unknown {
  let v: unknown = body;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

export function oauth2Provider(config: OAuth2Provider, deps: ProviderDeps): UpstreamProvider {
  const as = {
    issuer: new URL(config.authorizationEndpoint).origin,
    authorization_endpoint: config.authorizationEndpoint,
    token_endpoint: config.tokenEndpoint,
    userinfo_endpoint: config.userinfoEndpoint,
    ...(config.revocationEndpoint && { revocation_endpoint: config.revocationEndpoint }),
  };
  const text = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : null);
  return {
    ...staticServerProvider(config, deps, as),
    revoke: (tokens) => revokeAt(config, deps, as, tokens),
    async fetchIdentity(_as, tokens): Promise<IdentityOutcome> {
      const answer = await getJson(deps.fetch, config.userinfoEndpoint, {
        authorization: `Bearer ${tokens.accessToken}`,
        accept: 'application/json',
      });
      if (answer.kind === 'unavailable') return answer;
      if (answer.kind === 'status') return { kind: 'rejected', reason: `userinfo status ${answer.status}` };
      const body = answer.body;
      const sub = atPath(body, config.subjectClaim);
      const extra: Record<string, unknown> = {};
      for (const name of config.exposeClaims) {
        const v = atPath(body, name);
        if (v !== undefined) extra[name] = v;
      }
      return {
        kind: 'ok',
        identity: {
          subject:
            typeof sub === 'string'
              ? sub
              : typeof sub === 'number' && Number.isSafeInteger(sub)
                ? String(sub)
                : '',
          email: text(atPath(body, config.emailClaim))?.toLowerCase() ?? null,
          emailVerified: config.emailVerifiedClaim
            ? isVerified(atPath(body, config.emailVerifiedClaim))
            : false,
          name: text(atPath(body, config.nameClaim)),
          username: config.usernameClaim ? text(atPath(body, config.usernameClaim)) : null,
          extra,
        },
      };
    },
  };
}
