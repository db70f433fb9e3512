// POST /token (RFC 6749 §3.2; OAuth 2.1 §3.2): read the form → a resource server's grant (RFC 8693) or: authenticate
// the client → find the grant type's handler → check the client may use it → handle → answer. Every rule of a grant
// lives in its handler (src/oauth/grants/). Responses carry Cache-Control: no-store (RFC 6749 §5.1).
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { authenticateClient } from '../oauth/client-auth.ts';
import { recordClientUse } from '../oauth/client-registration.ts';
import { unauthorizedClient, unsupportedGrantType } from '../oauth/errors.ts';
import { readForm } from '../oauth/form.ts';
import { createGrantRegistry, grantRefusal, tokenResponse } from '../oauth/grants/index.ts';
import { tokenTrace } from '../trace/hooks.ts';
import { upstreamExchangeOf } from '../upstream/exchange.ts';
import { params as form, routeInput, text } from '../web/input.ts';
import { quietRoute } from '../web/quiet-route.ts';

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
  const trace = tokenTrace(ctx);
  // Routine answers are not logged one by one at info; refusals are (src/web/quiet-route.ts).
  const logging = quietRoute(app, '/token');
  const options = {
    ...routeInput(ctx, 'api', { body }),
    ...logging.options,
    onError: trace.onError,
    onResponse: [trace.onResponse, ...logging.onResponse],
  };
  app.post('/token', options, async (req, reply) => {
    const params = readForm(req);
    const grantType = params.require('grant_type');
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    const forResourceServer = grants.findForResourceServer(grantType);
    if (forResourceServer) return forResourceServer({ req, params });
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
