// The grant type registry: /token dispatches through it, and what Latchkey advertises (grant_types_supported),
// accepts at registration and offers in the CLI derives from it, so the two cannot drift apart.
import type { Client } from '../../generated/prisma/client.ts';
import { authorizationCodeGrant } from './authorization-code.ts';
import { clientCredentialsGrant } from './client-credentials.ts';
import { refreshTokenGrant } from './refresh-token.ts';
import type { GrantDependencies, GrantHandler, GrantType } from './types.ts';

export const GRANT_TYPES: readonly GrantType[] = [
  authorizationCodeGrant,
  refreshTokenGrant,
  clientCredentialsGrant,
];

export const AUTHORIZATION_CODE = authorizationCodeGrant.type;

/** RFC 8414 grant_types_supported. */
export const grantTypesSupported = (): string[] => GRANT_TYPES.map((g) => g.type);

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
}

export function createGrantRegistry(deps: GrantDependencies): GrantRegistry {
  const handlers = new Map(GRANT_TYPES.map((grant) => [grant.type, { grant, handle: grant.create(deps) }]));
  return { find: (type) => handlers.get(type) };
}
