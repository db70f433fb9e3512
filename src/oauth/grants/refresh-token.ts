// The refresh token grant with rotation (RFC 6749 §6; OAuth 2.1 §4.3.1): every use spends the token and issues a
// new pair. The same token presented again within REFRESH_REUSE_WINDOW seconds of its rotation (a client that
// refreshed twice at once) gets the very pair the first use got, so no second token family is born; that answer is
// kept sealed under a key derived from the spent token (src/lib/seal.ts), never in plaintext. Later, the token is a
// replay and revokes the whole grant (RFC 9700 §4.14.2). A refresh may narrow the scope, never widen it, and stays
// bound to its grant's resource.
import type { Client } from '../../generated/prisma/client.ts';
import type { RefreshFacts, TokenIssue } from '../../store/tokens.ts';
import { invalidGrant, invalidScope, invalidTarget, type OAuthError } from '../errors.ts';
import { requestedResourceId } from '../resources.ts';
import { isSubset, parseScope } from '../scopes.ts';
import { type GrantDependencies, type GrantType, type Outcome, settle, type TokenRequest } from './types.ts';

export const REFRESH_TOKEN = 'refresh_token';

type Deps = Pick<GrantDependencies, 'tokens' | 'resourceServers' | 'flushChanges' | 'config' | 'metrics'>;

interface Presented {
  client: Client;
  scopes: string[];
  /** The resource server the request names: undefined when absent, null when no registered one matches. */
  resourceId: string | null | undefined;
  now: Date;
}

/** The first rule the request breaks, checked before the token is spent; undefined when all hold. */
function refreshProblem(
  rt: Omit<RefreshFacts, 'id' | 'grantId' | 'rotatedAt'>,
  p: Presented,
): OAuthError | undefined {
  if (rt.grant.clientId !== p.client.id) return invalidGrant('refresh token was issued to another client');
  // RFC 8707 §2.2: an unknown resource and another registered one are the same mistake: not the bound audience.
  if (p.resourceId !== undefined && p.resourceId !== rt.grant.resourceServerId) {
    return invalidTarget('resource does not match the grant');
  }
  // RFC 6749 §6: a refresh may narrow the scope, never widen it.
  if (!isSubset(p.scopes, rt.scopes)) return invalidScope('scope exceeds the original grant');
  if (rt.revokedAt || rt.grant.revokedAt) return invalidGrant('refresh token was revoked');
  if (rt.expiresAt <= p.now) return invalidGrant('refresh token expired');
  return undefined;
}

export const refreshTokenGrant: GrantType<Deps> = {
  type: REFRESH_TOKEN,
  initial: false,
  redirects: false,
  confidentialOnly: false,
  selfRegistered: true,

  create(deps) {
    return async ({ client, params, now }: TokenRequest) => {
      const token = params.require('refresh_token');
      const presented: Presented = {
        client,
        scopes: parseScope(params.get('scope')),
        resourceId: await requestedResourceId(params, deps.resourceServers),
        now,
      };
      const windowMs = deps.config.refreshReuseWindow * 1000;
      const issue = (rt: { id: string; scopes: string[] }): TokenIssue => ({
        accessScopes: presented.scopes.length
          ? rt.scopes.filter((s) => presented.scopes.includes(s))
          : rt.scopes,
        refreshScopes: rt.scopes,
        parentRefreshId: rt.id,
        accessTokenTtl: deps.config.accessTokenTtl,
        refreshTokenTtl: deps.config.refreshTokenTtl,
      });
      // The usual rotation: one statement that spends the token, issues the next pair and keeps the answer for the
      // reuse window, only if every rule holds (src/store/token-paths.ts). An unknown resource cannot hold.
      if (presented.resourceId !== null) {
        const tokens = await deps.tokens.rotateRefresh(
          {
            token,
            clientId: client.id,
            resourceId: presented.resourceId,
            scopes: presented.scopes,
            lifetimes: { access: deps.config.accessTokenTtl, refresh: deps.config.refreshTokenTtl },
            keepUntil: windowMs > 0 ? new Date(now.getTime() + windowMs) : undefined,
          },
          now,
        );
        if (tokens) return settle({ tokens, refresh: 'rotated' }, deps.flushChanges, deps.metrics);
      }
      // Unknown, a broken rule, spent already (a retry inside the window, or a replay), or lost to a concurrent
      // rotation: the transactional path finds out which, and answers with an error, the kept answer or by revoking
      // the grant.
      const outcome = await deps.tokens.transaction(async (tx): Promise<Outcome> => {
        const rt = await tx.findRefreshToken(token);
        if (!rt) return { error: invalidGrant('refresh token is invalid'), revokedIssued: false };
        const problem = refreshProblem(rt, presented);
        if (problem) return { error: problem, revokedIssued: false };
        const claim = await tx.claimRefreshToken(rt.id, now);
        if (claim.kind === 'rotated') {
          const sinceRotation = now.getTime() - claim.rotatedAt.getTime();
          if (claim.revoked || sinceRotation > windowMs) {
            await tx.revokeGrant(rt.grantId, 'refresh_replay', now);
            const error = invalidGrant('refresh token was already used; the grant has been revoked');
            return { error, revokedIssued: true, replay: 'refresh_token', revoked: 'refresh_replay' };
          }
          const kept = await tx.findReplayAnswer(rt.id, token, now);
          // No kept answer (none was kept when it was spent, or it has just expired): the token is spent, but
          // inside the window that is not yet a replay, so the grant stands.
          if (!kept) return { error: invalidGrant('refresh token was already used'), revokedIssued: false };
          return { tokens: kept, refresh: 'reuse_window' };
        }
        const tokens = await tx.issueTokens(rt.grant, issue(rt), now);
        if (windowMs > 0) await tx.keepReplayAnswer(rt.id, token, tokens, new Date(now.getTime() + windowMs));
        return { tokens, refresh: 'rotated' };
      });
      return settle(outcome, deps.flushChanges, deps.metrics);
    };
  },
};
