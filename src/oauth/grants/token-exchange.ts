// RFC 8693 token exchange for the upstream access token (spec federation §6.2). Resource servers use it, not OAuth
// clients: the caller authenticates with its /introspect credentials (HTTP Basic or in the body), so /token
// dispatches here before client authentication. The subject token is the Latchkey access token an MCP client
// presented to the caller; the answer is the current upstream access token of the sign-in behind it
// (src/upstream/exchange.ts). Offered and advertised only when upstream providers are configured.
import type { FastifyRequest } from 'fastify';
import type { ResourceServer } from '../../generated/prisma/client.ts';
import { verifySecret } from '../../lib/crypto.ts';
import type { ResourceServerStore } from '../../store/resource-servers.ts';
import {
  ACCESS_TOKEN_TYPE,
  type ExchangeAnswer,
  TOKEN_EXCHANGE,
  type UpstreamExchange,
} from '../../upstream/exchange.ts';
import { presentedCredentials } from '../client-auth.ts';
import { invalidClient, invalidRequest } from '../errors.ts';
import type { Params } from '../params.ts';

// The caller is always challenged (RFC 6749 §5.2), as at /introspect.
const REALM = 'latchkey';

export interface ResourceServerTokenRequest {
  req: FastifyRequest;
  params: Params;
}

export type ResourceServerGrantHandler = (request: ResourceServerTokenRequest) => Promise<ExchangeAnswer>;

/** A grant type for resource servers: authenticated as resource servers, never registered by clients. */
export interface ResourceServerGrantType<Deps> {
  readonly type: string;
  create(deps: Deps): ResourceServerGrantHandler | undefined;
}

export interface TokenExchangeDeps {
  resourceServers: Pick<ResourceServerStore, 'findByClientId'>;
  /** Absent when no upstream provider is configured: the grant is then unsupported. */
  upstreamExchange?: UpstreamExchange | undefined;
}

async function authenticateResourceServer(
  req: FastifyRequest,
  params: Params,
  store: TokenExchangeDeps['resourceServers'],
): Promise<ResourceServer> {
  const { id, secret } = presentedCredentials(req, params, REALM);
  if (!id || secret === undefined) throw invalidClient('resource server authentication is required', REALM);
  const rs = await store.findByClientId(id);
  if (!rs || !verifySecret(secret, rs.secretHash)) {
    throw invalidClient('resource server authentication failed', REALM);
  }
  return rs;
}

export const tokenExchangeGrant: ResourceServerGrantType<TokenExchangeDeps> = {
  type: TOKEN_EXCHANGE,

  create({ resourceServers, upstreamExchange }) {
    if (!upstreamExchange) return undefined;
    return async ({ req, params }) => {
      const caller = await authenticateResourceServer(req, params, resourceServers);
      const subjectToken = params.get('subject_token');
      const subjectType = params.get('subject_token_type');
      if (!subjectToken || !subjectType) {
        throw invalidRequest('subject_token and subject_token_type are required');
      }
      if (subjectType !== ACCESS_TOKEN_TYPE) {
        throw invalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
      }
      const requested = params.get('requested_token_type');
      if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE) {
        throw invalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
      }
      return upstreamExchange.exchange(caller, subjectToken, params.get('audience'), req.log);
    };
  },
};
