// The authorization code grant (RFC 6749 §4.1.3; OAuth 2.1 §4.1.3): every rule of a code exchange. The code is
// single use (RFC 9700 §2.1.1): presenting it spends it, whatever the outcome, and presenting it again revokes
// everything issued from it (RFC 6749 §4.1.2). A check that fails also revokes the grant, so a stolen code cannot
// be tried twice.
import type { Client } from '../../generated/prisma/client.ts';
import type { CodeFacts, TokenIssue } from '../../store/tokens.ts';
import { invalidGrant, invalidRequest, invalidTarget, type OAuthError } from '../errors.ts';
import { isValidCodeVerifier, verifyPkce } from '../pkce.ts';
import { requestedResourceId } from '../resources.ts';
import { REFRESH_TOKEN } from './refresh-token.ts';
import { type GrantDependencies, type GrantType, type Outcome, settle, type TokenRequest } from './types.ts';

type Deps = Pick<GrantDependencies, 'tokens' | 'resourceServers' | 'flushChanges' | 'config' | 'metrics'>;

interface Presented {
  client: Client;
  verifier: string;
  redirectUri: string | undefined;
  /** The resource server the request names: undefined when absent, null when no registered one matches. */
  resourceId: string | null | undefined;
  now: Date;
}

/** The first rule the presented values break, checked in this order; undefined when all hold. */
function codeProblem(code: Omit<CodeFacts, 'id' | 'usedAt'>, p: Presented): OAuthError | undefined {
  if (code.expiresAt <= p.now) return invalidGrant('authorization code expired');
  if (code.clientId !== p.client.id) return invalidGrant('authorization code was issued to another client');
  // RFC 6749 §4.1.3: redirect_uri must be identical when the authorization request included it.
  if (p.redirectUri !== undefined && p.redirectUri !== code.redirectUri) {
    return invalidGrant('redirect_uri does not match the authorization request');
  }
  // RFC 8707 §2.2: an unknown resource and another registered one are the same mistake: not the bound audience.
  if (p.resourceId !== undefined && p.resourceId !== code.resourceServerId) {
    return invalidTarget('resource does not match the authorization request');
  }
  // RFC 7636 §4.6.
  if (!verifyPkce(p.verifier, code.codeChallenge)) {
    return invalidGrant('code_verifier does not match the code_challenge');
  }
  if (code.grant.revokedAt) return invalidGrant('grant was revoked');
  return undefined;
}

export const authorizationCodeGrant: GrantType<Deps> = {
  type: 'authorization_code',
  initial: true,
  redirects: true,
  confidentialOnly: false,
  selfRegistered: true,

  create(deps) {
    return async ({ client, params, now }: TokenRequest) => {
      const code = params.require('code');
      const verifier = params.get('code_verifier');
      if (verifier === undefined) throw invalidRequest('code_verifier is required (PKCE)');
      const presented: Presented = {
        client,
        verifier,
        redirectUri: params.get('redirect_uri'),
        resourceId: await requestedResourceId(params, deps.resourceServers),
        now,
      };
      const lifetimes = {
        access: deps.config.accessTokenTtl,
        refresh: client.grantTypes.includes(REFRESH_TOKEN) ? deps.config.refreshTokenTtl : undefined,
      };
      const issue = (scopes: string[]): TokenIssue => ({
        accessScopes: scopes,
        refreshScopes: scopes,
        parentRefreshId: null,
        accessTokenTtl: lifetimes.access,
        refreshTokenTtl: lifetimes.refresh,
      });
      // The usual exchange: one statement that spends the code and issues the tokens only if every rule holds
      // (src/store/token-paths.ts). A malformed verifier or an unknown resource cannot hold: straight to the path below.
      const { redirectUri, resourceId } = presented;
      if (isValidCodeVerifier(verifier) && resourceId !== null) {
        const exchange = { code, clientId: client.id, verifier, redirectUri, resourceId, lifetimes };
        const tokens = await deps.tokens.exchangeCode(exchange, now);
        if (tokens) return tokens;
      }
      // Unknown, spent, a broken rule, or a claim lost to a concurrent exchange: the transactional path spends the
      // code (if still unspent) and revokes the grant, committing both with the answer.
      const outcome = await deps.tokens.transaction(async (tx): Promise<Outcome> => {
        const claim = await tx.claimAuthorizationCode(code, now);
        if (claim.kind === 'unknown')
          return { error: invalidGrant('authorization code is invalid'), revokedIssued: false };
        if (claim.kind === 'spent') {
          await tx.revokeGrant(claim.code.grantId, 'code_replay', now);
          const error = invalidGrant('authorization code was already used');
          return { error, revokedIssued: true, replay: 'authorization_code', revoked: 'code_replay' };
        }
        const problem = codeProblem(claim.code, presented);
        if (problem) {
          // Nothing was issued from a code used for the first time, so there is nothing to tell other instances.
          await tx.revokeGrant(claim.code.grantId, 'invalid_exchange', now);
          return { error: problem, revokedIssued: false, revoked: 'invalid_exchange' };
        }
        return { tokens: await tx.issueTokens(claim.code.grant, issue(claim.code.scopes), now) };
      });
      return settle(outcome, deps.flushChanges, deps.metrics);
    };
  },
};
