// POST /token (RFC 6749 §3.2, §4.1.3, §6; OAuth 2.1 §3.2): authorization_code with PKCE, and refresh_token
// with rotation. Responses carry Cache-Control: no-store (RFC 6749 §5.1).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import type { Client } from '../generated/prisma/client.ts';
import { Params } from '../lib/params.ts';
import { authenticateClient } from '../oauth/client-auth.ts';
import { invalidGrant, invalidRequest, OAuthError } from '../oauth/errors.ts';
import { verifyPkce } from '../oauth/pkce.ts';
import { resolveResource } from '../oauth/resources.ts';
import { formatScope, isSubset, parseScope } from '../oauth/scopes.ts';
import type { ExchangeResult, IssuedTokens, RefreshResult } from '../store/grants.ts';

export function readForm(req: FastifyRequest): Params {
  const type = req.headers['content-type'] ?? '';
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    throw invalidRequest('the request body must be application/x-www-form-urlencoded');
  }
  const params = Params.from(req.body);
  const duplicate = params.firstDuplicate();
  if (duplicate) throw invalidRequest(`${duplicate} must not be repeated`);
  return params;
}

function send(reply: FastifyReply, t: IssuedTokens) {
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
  return {
    access_token: t.accessToken,
    token_type: 'Bearer',
    expires_in: t.expiresIn,
    ...(t.refreshToken ? { refresh_token: t.refreshToken } : {}),
    scope: formatScope(t.scopes),
  };
}

/** The resource server a `resource` parameter names, or undefined when the parameter is absent. */
async function requestedResourceId(ctx: AppContext, params: Params): Promise<string | undefined> {
  const resource = params.get('resource');
  if (resource === undefined) return undefined;
  return (await resolveResource([resource], ctx.stores.resourceServers)).id;
}

function lifetimes(ctx: AppContext, client: Client) {
  return {
    accessTokenTtl: ctx.config.accessTokenTtl,
    refreshTokenTtl: ctx.config.refreshTokenTtl,
    issueRefreshToken: client.grantTypes.includes('refresh_token'),
  };
}

/** Turns a store result into tokens or the error to answer with. */
async function settle(
  ctx: AppContext,
  client: Client,
  result: ExchangeResult | RefreshResult,
  now: Date,
  messages: { unknown: string; replayed: string },
): Promise<IssuedTokens> {
  switch (result.kind) {
    case 'issued':
      await ctx.stores.clients.touch(client.id, now);
      return result.tokens;
    case 'unknown':
      throw invalidGrant(messages.unknown);
    case 'replayed':
      // A replay revoked the whole grant: every instance's caches must know before the client hears of it.
      await ctx.changes.flush();
      throw invalidGrant(messages.replayed);
    case 'rejected':
      throw new OAuthError(result.error, result.reason);
  }
}

async function exchangeAuthorizationCode(ctx: AppContext, client: Client, params: Params) {
  const code = params.require('code');
  const verifier = params.get('code_verifier');
  if (verifier === undefined) throw invalidRequest('code_verifier is required (PKCE)');
  const redirectUri = params.get('redirect_uri');
  const resourceId = await requestedResourceId(ctx, params);
  const now = ctx.clock.now();
  const result = await ctx.stores.grants.exchangeAuthorizationCode(
    code,
    (row) => {
      if (row.clientId !== client.id)
        return { reason: 'authorization code was issued to another client', error: 'invalid_grant' };
      if (redirectUri !== undefined && redirectUri !== row.redirectUri) {
        return { reason: 'redirect_uri does not match the authorization request', error: 'invalid_grant' };
      }
      if (resourceId !== undefined && resourceId !== row.resourceServerId) {
        return { reason: 'resource does not match the authorization request', error: 'invalid_target' };
      }
      if (!verifyPkce(verifier, row.codeChallenge))
        return { reason: 'code_verifier does not match the code_challenge', error: 'invalid_grant' };
      return undefined;
    },
    lifetimes(ctx, client),
    now,
  );
  return settle(ctx, client, result, now, {
    unknown: 'authorization code is invalid',
    replayed: 'authorization code was already used',
  });
}

async function refresh(ctx: AppContext, client: Client, params: Params) {
  const token = params.require('refresh_token');
  const requestedScopes = parseScope(params.get('scope'));
  const resourceId = await requestedResourceId(ctx, params);
  const now = ctx.clock.now();
  const result = await ctx.stores.grants.rotateRefreshToken(
    token,
    (rt) => {
      if (rt.grant.clientId !== client.id)
        return { reason: 'refresh token was issued to another client', error: 'invalid_grant' };
      if (resourceId !== undefined && resourceId !== rt.grant.resourceServerId) {
        return { reason: 'resource does not match the grant', error: 'invalid_target' };
      }
      // RFC 6749 §6: a refresh may narrow the scope, never widen it.
      if (!isSubset(requestedScopes, rt.scopes))
        return { reason: 'scope exceeds the original grant', error: 'invalid_scope' };
      return undefined;
    },
    (rt) => (requestedScopes.length ? rt.scopes.filter((s) => requestedScopes.includes(s)) : rt.scopes),
    lifetimes(ctx, client),
    ctx.config.refreshReuseWindow,
    now,
  );
  return settle(ctx, client, result, now, {
    unknown: 'refresh token is invalid',
    replayed: 'refresh token was already used; the grant has been revoked',
  });
}

export function tokenRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.post('/token', async (req, reply) => {
    const params = readForm(req);
    const grantType = params.require('grant_type');
    const client = await authenticateClient(ctx, req, params);
    if (grantType !== 'authorization_code' && grantType !== 'refresh_token') {
      throw new OAuthError('unsupported_grant_type', `grant_type ${grantType} is not supported`);
    }
    if (!client.grantTypes.includes(grantType)) {
      throw new OAuthError('unauthorized_client', `this client may not use grant_type ${grantType}`);
    }
    const tokens =
      grantType === 'authorization_code'
        ? await exchangeAuthorizationCode(ctx, client, params)
        : await refresh(ctx, client, params);
    return send(reply, tokens);
  });
}
