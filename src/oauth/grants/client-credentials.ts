// The client credentials grant (RFC 6749 §4.4; the MCP authorization extension "OAuth client credentials"): a
// confidential machine client, created by an operator, gets an access token for itself, bound to one resource
// server (RFC 8707) and never with a refresh token (RFC 6749 §4.4.3). Its scopes are limited to the ones the
// client is registered for; a client registered without a scope may ask for any scope the server supports.
import type { Client } from '../../generated/prisma/client.ts';
import { resolveResource } from '../resources.ts';
import { parseScope, resolveRequestedScopes } from '../scopes.ts';
import type { GrantDependencies, GrantType, TokenRequest } from './types.ts';

type Deps = Pick<GrantDependencies, 'tokens' | 'resourceServers' | 'config'>;

function registeredScopes(client: Client, supported: readonly string[]): readonly string[] {
  const registered = parseScope(client.scope ?? undefined);
  return registered.length ? supported.filter((s) => registered.includes(s)) : supported;
}

export const clientCredentialsGrant: GrantType<Deps> = {
  type: 'client_credentials',
  initial: true,
  redirects: false,
  confidentialOnly: true,
  selfRegistered: false,

  create(deps) {
    return async ({ client, params, now }: TokenRequest) => {
      const resource = params.get('resource');
      // Without `resource`, the only registered resource server, as at /authorize (RFC 8707 §2).
      const rs = await resolveResource(resource === undefined ? [] : [resource], deps.resourceServers);
      const scopes = resolveRequestedScopes(
        params.get('scope'),
        registeredScopes(client, deps.config.scopes),
      );
      return deps.tokens.issueClientGrant(
        { clientId: client.id, resourceServerId: rs.id, scopes },
        deps.config.accessTokenTtl,
        now,
      );
    };
  },
};
