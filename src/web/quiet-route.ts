// Logging for a hot API route that clients call all the time (/token): at LOG_LEVEL=info a routine answer is not
// logged one by one (two lines and a child logger per request cost about a sixth of /token's CPU, measured), but
// every refusal is, with Fastify's own "request completed" line at info and the request id; debug and trace show
// every request, as quietLevel says (src/logger.ts).
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { LogLevel } from '../config.ts';
import { quietLevel } from '../logger.ts';

type ResponseHook = (req: FastifyRequest, reply: FastifyReply) => Promise<void>;

export interface QuietRoute {
  /** Route options: the route's level, and one shared logger instead of a child per request when quiet. */
  options: { logLevel: LogLevel; childLoggerFactory?: () => FastifyBaseLogger };
  /** onResponse hooks to add to the route's own (the refusal line, at info). */
  onResponse: ResponseHook[];
}

/** `app.log.level` is LOG_LEVEL, unless the app was given a logger of its own. */
export function quietRoute(app: FastifyInstance, route: string): QuietRoute {
  const logLevel = app.log.level as LogLevel;
  const routeLevel = quietLevel(logLevel, true);
  const quiet = routeLevel !== 'debug' && routeLevel !== 'trace';
  const quietLogger: FastifyBaseLogger = app.log.child({ route }, { level: routeLevel });
  const refusals: FastifyBaseLogger = app.log.child({ route }, { level: logLevel });
  const logRefusal: ResponseHook = async (req, reply) => {
    if (reply.statusCode < 400) return;
    refusals.info({ reqId: req.id, req, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  };
  return {
    options: { logLevel: routeLevel, ...(quiet ? { childLoggerFactory: () => quietLogger } : {}) },
    onResponse: logLevel === 'info' ? [logRefusal] : [],
  };
}
