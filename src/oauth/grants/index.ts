// The grant type registry: /token dispatches through it, and what Latchkey advertises (grant_types_supported),
// accepts at registration and offers in the CLI derives from it, so the two cannot drift apart.
import type { Client } from '../../generated/prisma/client.ts';
import type { IssuedTokens } from '../../store/tokens.ts';
import { formatScope } from '../scopes.ts';
import { authorizationCodeGrant } from './authorization-code.ts';
import { clientCredentialsGrant } from './client-credentials.ts';
import { refreshTokenGrant } from './refresh-token.ts';
import { type ResourceServerGrantHandler, tokenExchangeGrant } from './token-exchange.ts';
import type { GrantDependencies, GrantHandler, GrantType } from './types.ts';

export const GRANT_TYPES: readonly GrantType[] = [
  authorizationCodeGrant,
  refreshTokenGrant,
  clientCredentialsGrant,
];

export const AUTHORIZATION_CODE = authorizationCodeGrant.type;

/**
 * Grants for resource servers, not clients (RFC 8693 token exchange for the upstream token): /token dispatches on
 * them before client authentication, and clients never register for them.
 */
export const RESOURCE_SERVER_GRANTS = [tokenExchangeGrant] as const;

/** RFC 8414 grant_types_supported; token exchange only when upstream providers are configured. */
export const grantTypesSupported = (options: { tokenExchange?: boolean } = {}): string[] => [
  ...GRANT_TYPES.map((g) => g.type),
  ...(options.tokenExchange ? RESOURCE_SERVER_GRANTS.map((g) => g.type) : []),
];

export function findGrantType(type: string): GrantType | undefined {
  return GRANT_TYPES.find((g) => g.type === type);
}

/** Why `client` may not use `grant`, or undefined when it may (RFC 6749 §5.2 unauthorized_client). */
export function grantRefusal(grant: GrantType, client: Client): string | undefined {
  if (!client.grantTypes.includes(grant.type)) return `this client may not use grant_type ${grant.type}`;
  if (grant.confidentialOnly && client.tokenEndpointAuthMethod === 'none') {
    return `grant_type ${grant.type} is only for confidential clients`;
  }
  return undefined;
}

export interface GrantRegistry {
  find(type: string): { grant: GrantType; handle: GrantHandler } | undefined;
  /** A grant resource servers use (it authenticates them itself); undefined for client grants. */
  findForResourceServer(type: string): ResourceServerGrantHandler | undefined;
}

export function createGrantRegistry(deps: GrantDependencies): GrantRegistry {
  const handlers = new Map(GRANT_TYPES.map((grant) => [grant.type, { grant, handle: grant.create(deps) }]));
  const forResourceServers = new Map<string, ResourceServerGrantHandler>();
  for (const grant of RESOURCE_SERVER_GRANTS) {
    const handle = grant.create(deps);
    if (handle) forResourceServers.set(grant.type, handle);
  }
  return {
    find: (type) => handlers.get(type),
    findForResourceServer: (type) => forResourceServers.get(type),
  };
}

/** The successful /token answer (RFC 6749 §5.1). */
export function tokenResponse(t: IssuedTokens) {
  return {
    access_token: t.accessToken,
    token_type: 'Bearer',
    expires_in: t.expiresIn,
    ...(t.refreshToken ? { refresh_token: t.refreshToken } : {}),
    scope: formatScope(t.scopes),
  };
}
