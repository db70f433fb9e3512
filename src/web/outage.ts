// While the database cannot be reached: Latchkey's pages answer a friendly 503 page with Retry-After (RFC 9110
// §15.6.4, §10.2.3) instead of a 500, and the API answers 503 temporarily_unavailable (RFC 6749 §5.2) through the
// app's error handler. Any other error goes on to that handler unchanged, so a real bug stays a 500.
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { DATABASE_RETRY_AFTER, isDatabaseUnavailable } from '../db/unavailable.ts';
import { type OAuthError, temporarilyUnavailable } from '../oauth/errors.ts';
import { renderPage } from './views.ts';

function logOutage(log: FastifyBaseLogger, err: unknown): void {
  // The message only: a driver error's other fields may hold query parameters.
  log.warn(
    {
      err: {
        message: String((err as Error).message)
          .split('\n')
          .at(-1),
      },
    },
    'database unavailable',
  );
}

/** The 503 temporarily_unavailable error for `err` if it says the database is unavailable (logged), else undefined. */
export function databaseOutageError(err: unknown, log: FastifyBaseLogger): OAuthError | undefined {
  if (!isDatabaseUnavailable(err)) return undefined;
  logOutage(log, err);
  return temporarilyUnavailable(
    'the service is briefly unavailable; try again shortly',
    DATABASE_RETRY_AFTER,
  );
}

/**
 * Where "try again" leads: the same page for a GET on our own path; nothing for a form post. Only a path that
 * cannot be read as another origin (`//host`, `/\host`) is offered.
 */
function retryUrl(req: FastifyRequest): string | undefined {
  if (req.method !== 'GET' || !/^\/(?![/\\])/.test(req.url)) return undefined;
  return req.url;
}

/** Gives the pages' scope its 503 page; every other error goes on to the app's error handler. */
export function registerOutagePage(pages: FastifyInstance, ctx: AppContext): void {
  pages.setErrorHandler(async (err, req, reply) => {
    if (!isDatabaseUnavailable(err)) throw err;
    logOutage(req.log, err);
    reply.header('retry-after', String(DATABASE_RETRY_AFTER));
    return renderPage(
      ctx,
      reply,
      'unavailable',
      { retryAfter: DATABASE_RETRY_AFTER, retryUrl: retryUrl(req) },
      { status: 503 },
    );
  });
}
