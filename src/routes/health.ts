// GET /healthz: the process is up. GET /readyz: the database answers (503 otherwise), checked on every call
// so a database that comes back is seen without a restart.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { quietLevel } from '../logger.ts';

export function healthRoutes(app: FastifyInstance, ctx: AppContext): void {
  const logLevel = quietLevel(ctx.config.logLevel);
  app.get('/healthz', { logLevel }, async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    return { status: 'ok' };
  });

  app.get('/readyz', { logLevel }, async (req, reply) => {
    reply.header('cache-control', 'no-store');
    try {
      await ctx.db.ping(2000);
      return { status: 'ready', database: ctx.db.kind };
    } catch (err) {
      req.log.warn({ err: { message: (err as Error).message } }, 'readiness check failed');
      return reply.code(503).send({ status: 'unavailable', database: ctx.db.kind });
    }
  });
}
