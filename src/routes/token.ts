// POST /token (RFC 6749 §3.2; OAuth 2.1 §3.2): read the form → a resource server's grant (RFC 8693) or: authenticate
// the client → find the grant type's handler → check the client may use it → handle → answer. Every rule of a grant
// lives in its handler (src/oauth/grants/). Responses carry Cache-Control: no-store (RFC 6749 §5.1).
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { authenticateClient } from '../oauth/client-auth.ts';
import { recordClientUse } from '../oauth/client-registration.ts';
import { unauthorizedClient, unsupportedGrantType } from '../oauth/errors.ts';
import { readForm } from '../oauth/form.ts';
import { createGrantRegistry, grantRefusal } from '../oauth/grants/index.ts';
import { formatScope } from '../oauth/scopes.ts';
import type { IssuedTokens } from '../store/tokens.ts';
import { tokenTrace } from '../trace/hooks.ts';
import { upstreamExchangeOf } from '../upstream/exchange.ts';
import { params as form, routeInput, text } from '../web/input.ts';

/** RFC 6749 §5.1. */
function tokenResponse(t: IssuedTokens) {
  return {
    access_token: t.accessToken,
    token_type: 'Bearer',
    expires_in: t.expiresIn,
    ...(t.refreshToken ? { refresh_token: t.refreshToken } : {}),
    scope: formatScope(t.scopes),
  };
}

export function tokenRoutes(app: FastifyInstance, ctx: AppContext): void {
  const grants = createGrantRegistry({
    ...ctx.stores,
    resourceServers: { ...ctx.stores.resourceServers, ...ctx.resourceServers },
    upstreamExchange: upstreamExchangeOf(ctx),
    flushChanges: () => ctx.changes.flush(),
    metrics: ctx.metrics,
    config: ctx.config,
  });
  const names = ['grant_type', 'code', 'code_verifier', 'redirect_uri', 'refresh_token', 'scope', 'resource'];
  const body = form(Object.fromEntries(['client_id', 'client_secret', ...names].map((n) => [n, text()])));
  app.post('/token', { ...routeInput(ctx, 'api', { body }), ...tokenTrace(ctx) }, async (req, reply) => {
    const params = readForm(req);
    const grantType = params.require('grant_type');
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    const forResourceServer = grants.findForResourceServer(grantType);
    if (forResourceServer) {
      // Resource servers ask on every tool call that needs the upstream: as quiet as /introspect below debug.
      if (req.log.level === 'info') req.log.level = 'warn';
      return forResourceServer({ req, params });
    }
    const client = await authenticateClient(ctx, req, params);
    const found = grants.find(grantType);
    if (!found) throw unsupportedGrantType(`grant_type ${grantType} is not supported`);
    const refusal = grantRefusal(found.grant, client);
    if (refusal) throw unauthorizedClient(refusal);
    const now = ctx.clock.now();
    const tokens = await found.handle({ client, params, now });
    ctx.metrics.tokensIssued(found.grant.type);
    await recordClientUse(ctx.stores.clients, client, now, req.log);
    return tokenResponse(tokens);
  });
}
