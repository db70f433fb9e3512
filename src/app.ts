// buildApp(deps): one Fastify instance with its plugins and every route, registered explicitly here so the whole
// attack surface reads in one file. It never listens; src/server.ts (started by src/main.ts) does.
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { ChangeFeed, type InstanceOptions } from './changes.ts';
import type { Config } from './config.ts';
import type { AppContext } from './context.ts';
import type { Database } from './db/database.ts';
import { type Clock, systemClock } from './lib/clock.ts';
import { randomToken } from './lib/crypto.ts';
import { loggerOptions } from './logger.ts';
import { appMetrics, countRequests, countUnmatched, serveMetrics } from './metrics/http.ts';
import { cachedResourceServers } from './oauth/cached-lookups.ts';
import { warnIfCimdLoopbackAllowed } from './oauth/cimd/index.ts';
import { type ClientResolverOptions, createClientResolver } from './oauth/clients.ts';
import { invalidRequest, NOT_FOUND_BODY, OAuthError, serverError } from './oauth/errors.ts';
import { accountRoutes } from './routes/account.ts';
import { appsRoutes } from './routes/apps.ts';
import { authorizeRoutes } from './routes/authorize.ts';
import { healthRoutes } from './routes/health.ts';
import { introspectRoutes } from './routes/introspect.ts';
import { loginRoutes } from './routes/login.ts';
import { metadataRoutes } from './routes/metadata.ts';
import { notFoundPage } from './routes/not-found.ts';
import { registerRoutes } from './routes/register.ts';
import { revokeRoutes } from './routes/revoke.ts';
import { tokenRoutes } from './routes/token.ts';
import { serverOptions } from './server-options.ts';
import { defaultSignInMethods, type SignInMethodsFactory, signInMethods } from './signin/index.ts';
import { createStores } from './store/index.ts';
import { TraceRecorder } from './trace/recorder.ts';
import type { UpstreamFetch } from './upstream/http.ts';
import { createUpstream, logUpstreamProviders } from './upstream/index.ts';
import { databaseOutageError, registerOutagePage } from './web/outage.ts';
import { registerViews } from './web/views.ts';

export interface AppDeps {
  config: Config;
  db: Database;
  clock?: Clock;
  /** A pino logger instance or options; defaults to JSON logs at config.logLevel. */
  logger?: FastifyServerOptions['loggerInstance'];
  /** CIMD fetch settings (resolver, trusted CAs, limits): tests use them to serve documents on loopback. */
  cimd?: ClientResolverOptions['cimd'];
  /** The sign-in methods, in page order; default: the password form. Tests pass their own. */
  signInMethods?: SignInMethodsFactory;
  /** The fetch behind every upstream provider call (timeouts and size caps still apply): tests route to stand-ins. */
  upstreamFetch?: UpstreamFetch;
  /** Heartbeat, lapse and acknowledgement timing of this instance (tests shorten them or fire the timers). */
  instance?: InstanceOptions;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const requestIdPrefix = `${randomToken(4)}-`;
  let requestCounter = 0;
  const { config } = deps;
  const stores = createStores(deps.db);
  const clock = deps.clock ?? systemClock;
  // Read (or, by the first instance of a deployment, created) before any request: minting and /introspect need it.
  const tokenTags = await stores.tokenTags.load(clock.now());
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: loggerOptions(config.logLevel) }),
    // Request ids name log lines, they guard nothing: a per-process random prefix and a counter are enough.
    genReqId: () => `${requestIdPrefix}${(++requestCounter).toString(36)}`,
    requestIdHeader: false,
    ...serverOptions(config),
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
    forceCloseConnections: false,
  }) as unknown as FastifyInstance;
  const metrics = appMetrics(config, deps.db);
  countRequests(app, metrics); // before any route is added

  const upstream = createUpstream({ config, clock, log: app.log, fetch: deps.upstreamFetch });
  logUpstreamProviders(upstream, config, app.log);
  // Checked before anything starts: a bad method list fails here, naming the problem.
  const signIn = signInMethods(
    (deps.signInMethods ?? defaultSignInMethods)({ config, stores, clock, upstream }),
  );
  const changes = await ChangeFeed.start(deps.db, app.log, clock, deps.instance);
  app.addHook('onClose', async () => changes.stop());
  const traces = new TraceRecorder({ store: stores.traces, clock, steps: config.traceSteps, log: app.log });
  traces.start();
  app.addHook('onClose', async () => traces.stop()); // after in-flight requests: their steps are written too
  const trace = (clientId: string, outcome: string, detail: string) =>
    traces.record({ clientId, step: 'cimd_fetch', outcome, detail });
  const ctx: AppContext = {
    config,
    db: deps.db,
    clock,
    stores,
    tokenTags,
    clients: createClientResolver(stores, { config, clock, cimd: deps.cimd, metrics, changes, trace }),
    resourceServers: cachedResourceServers(stores.resourceServers, changes, clock),
    changes,
    signIn,
    upstream,
    metrics,
    traces,
  };

  warnIfCimdLoopbackAllowed(config, app.log);
  await app.register(formbody);

  // Responses sent once shutdown has begun say `Connection: close`: a kept-alive connection would otherwise hold
  // app.close() open until the shutdown timeout (Fastify closes only the connections idle when it starts closing).
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onSend', (req, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    reply.header('x-request-id', req.id);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    done(null, payload);
  });

  app.setErrorHandler((thrown, req, reply) => {
    // A database that cannot be reached is 503 temporarily_unavailable with Retry-After, not a 500 (web/outage.ts).
    const err = databaseOutageError(thrown, req.log) ?? thrown;
    if (err instanceof OAuthError) {
      if (err.status >= 500 && err === thrown) req.log.error({ err, requestId: req.id }, 'oauth error');
      return reply
        .code(err.status)
        .headers({ ...err.headers, 'cache-control': 'no-store' })
        .send(err.toJSON());
    }
    const status = (err as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) {
      // Fastify's own validation and parsing errors (bad JSON, body too large, unsupported media type).
      return reply
        .code(status)
        .header('cache-control', 'no-store')
        .send(invalidRequest('the request could not be read').toJSON());
    }
    req.log.error({ err, requestId: req.id }, 'unhandled error');
    return reply
      .code(500)
      .header('cache-control', 'no-store')
      .send(serverError('an internal error occurred').toJSON());
  });

  app.setNotFoundHandler((req, reply) => {
    countUnmatched(metrics, req, reply.code(404));
    reply.header('cache-control', 'no-store').send(NOT_FOUND_BODY);
  });

  // Every route, in one place.
  healthRoutes(app, ctx);
  serveMetrics(app, config, metrics);
  registerRoutes(app, ctx);
  metadataRoutes(app, ctx);
  // Latchkey's own pages, in a scope of their own: only they read cookies and render templates, so the API routes
  // (the /introspect hot path above all) carry neither plugin's hooks.
  await app.register(async (pages) => {
    await pages.register(cookie);
    await registerViews(pages, ctx);
    registerOutagePage(pages, ctx);
    loginRoutes(pages, ctx);
    authorizeRoutes(pages, ctx);
    accountRoutes(pages, ctx);
    appsRoutes(pages, ctx);
    notFoundPage(pages, ctx);
  });
  tokenRoutes(app, ctx);
  revokeRoutes(app, ctx);
  introspectRoutes(app, ctx);

  // The context, for code that embeds the app (and tests): e.g. `app.latchkey.changes.flush()` after changing
  // the database out of band, to know this instance has seen it.
  app.decorate('latchkey', ctx);

  return app;
}

declare module 'fastify' {
  interface FastifyInstance {
    latchkey: AppContext;
  }
}
