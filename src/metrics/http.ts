// Where /metrics is served and how requests are counted (README: Metrics).
// - Off unless METRICS_TOKEN or METRICS_PORT is set: then no route, no hook, nothing counted.
// - METRICS_TOKEN alone: GET /metrics on the public listener, for requests bearing that token (RFC 6750 §2.1),
//   compared in constant time; anything else is 401 with a WWW-Authenticate challenge.
// - METRICS_PORT: GET /metrics only on a listener of its own (METRICS_HOST, else HOST), which `listenMetrics`
//   starts; the token is required there too when it is set. The public listener then has no /metrics at all.
// Requests are counted per route pattern (never the raw URL): each route gets an onResponse hook bound to its pattern
// when it is added, so the hot path looks nothing up by URL and builds no label object.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import { constantTimeEqual } from '../lib/crypto.ts';
import { quietLevel } from '../logger.ts';
import { invalidToken, NOT_FOUND_BODY } from '../oauth/errors.ts';
import { serverOptions } from '../server-options.ts';
import { createMetrics, type Metrics, NO_METRICS, type PrometheusMetrics } from './metrics.ts';

type MetricsSettings = Pick<Config, 'metricsToken' | 'metricsPort'>;

/** The app's metrics: a registry of its own when metrics are on, else the no-op. */
export function appMetrics(config: MetricsSettings, db: Parameters<typeof createMetrics>[0]): Metrics {
  const on = config.metricsToken !== undefined || config.metricsPort !== undefined;
  return on ? createMetrics(db) : NO_METRICS;
}

/** Counts every route added to `app` after this call (and its child scopes) by its pattern. */
export function countRequests(app: FastifyInstance, metrics: Metrics): void {
  if (!metrics.enabled) return;
  app.addHook('onRoute', (route) => {
    const record = metrics.routeRecorder(route.url);
    const hook = (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
      record(req.method, reply.statusCode, reply.elapsedTime);
      done();
    };
    const existing = route.onResponse;
    route.onResponse = existing === undefined ? [hook] : [...[existing].flat(), hook];
  });
}

/** Counts a request no route matched (called by the not-found handler). */
export function countUnmatched(metrics: Metrics, req: FastifyRequest, reply: FastifyReply): void {
  if (metrics.enabled) metrics.unmatched(req.method, reply.statusCode, reply.elapsedTime);
}

function metricsRoute(app: FastifyInstance, metrics: PrometheusMetrics, config: Config): void {
  const token = config.metricsToken;
  app.get('/metrics', { logLevel: quietLevel(config.logLevel) }, async (req, reply) => {
    reply.header('cache-control', 'no-store');
    if (token !== undefined) {
      const match = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
      if (!match || !constantTimeEqual(match[1]!, token)) {
        // RFC 6750 §3.1: no credentials → a bare challenge; wrong ones → invalid_token.
        const err = invalidToken('a valid metrics token is required', !match);
        return reply.code(err.status).headers(err.headers).send(err.toJSON());
      }
    }
    const body = await metrics.registry.metrics();
    return reply.header('content-type', metrics.registry.contentType).send(body);
  });
}

const separate = new WeakMap<FastifyInstance, FastifyInstance>();

/**
 * Adds /metrics where the configuration says: to `app` itself (METRICS_TOKEN only), or to a listener of its own
 * that `listenMetrics(app)` starts and `app.close()` stops (METRICS_PORT).
 */
export function serveMetrics(app: FastifyInstance, config: Config, metrics: Metrics): void {
  if (!isPrometheus(metrics)) return;
  if (config.metricsPort === undefined) {
    metricsRoute(app, metrics, config);
    return;
  }
  // Its own "Server listening at" line would read as the public listener's: it logs warnings and errors only, and
  // src/server.ts says where it listens.
  const level = ['error', 'fatal', 'silent'].includes(app.log.level) ? app.log.level : 'warn';
  const loggerInstance = app.log.child({ listener: 'metrics' }, { level });
  const server = Fastify({ loggerInstance, ...serverOptions(config) }) as unknown as FastifyInstance;
  metricsRoute(server, metrics, config);
  server.setNotFoundHandler((_req, reply) => {
    reply.code(404).header('cache-control', 'no-store').send(NOT_FOUND_BODY);
  });
  separate.set(app, server);
  app.addHook('onClose', async () => server.close());
}

/** Starts the metrics listener of `app` when METRICS_PORT is set; resolves to its address (undefined: none). */
export async function listenMetrics(app: FastifyInstance): Promise<string | undefined> {
  const server = separate.get(app);
  if (!server) return undefined;
  const { metricsPort, metricsHost, host } = app.latchkey.config;
  return server.listen({ port: metricsPort ?? 0, host: metricsHost ?? host });
}

function isPrometheus(metrics: Metrics): metrics is PrometheusMetrics {
  return metrics.enabled && 'registry' in metrics;
}
