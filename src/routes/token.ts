// POST /token (RFC 6749 §3.2; OAuth 2.1 §3.2): read the form → a resource server's grant (RFC 8693) or: authenticate
// the client → find the grant type's handler → check the client may use it → handle → answer. Every rule of a grant
// lives in its handler (src/oauth/grants/). Responses carry Cache-Control: no-store (RFC 6749 §5.1).
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { LogLevel } from '../config.ts';
import type { AppContext } from '../context.ts';
import { quietLevel } from '../logger.ts';
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
  const trace = tokenTrace(ctx);
  // Clients exchange and refresh all the time: at LOG_LEVEL=info a routine answer is not logged one by one (two lines
  // and a child logger per request cost about a sixth of this route's CPU, measured), as on /introspect; every
  // refusal still is: Fastify's own line at info, with the request id. debug and trace show every request.
  // The level the server's logger runs at: LOG_LEVEL, unless the app was given a logger of its own.
  const logLevel = app.log.level as LogLevel;
  const routeLevel = quietLevel(logLevel, true);
  const quiet = routeLevel !== 'debug' && routeLevel !== 'trace';
  const quietLogger: FastifyBaseLogger = app.log.child({ route: '/token' }, { level: routeLevel });
  const refusals: FastifyBaseLogger = app.log.child({ route: '/token' }, { level: logLevel });
  const logRefusal = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (reply.statusCode < 400) return;
    refusals.info({ reqId: req.id, req, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  };
  const options = {
    ...routeInput(ctx, 'api', { body }),
    logLevel: routeLevel,
    // As on /introspect, one logger for every quiet request instead of a child per request.
    ...(quiet ? { childLoggerFactory: () => quietLogger } : {}),
    onError: trace.onError,
    onResponse: logLevel === 'info' ? [trace.onResponse, logRefusal] : trace.onResponse,
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
