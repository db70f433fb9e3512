// GET of a path Latchkey does not serve: a person (a browser asks for text/html) gets a page that says so in plain
// words; a program gets the same JSON 404 as every other unknown route.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { NOT_FOUND_BODY } from '../oauth/errors.ts';
import { errorPage } from '../web/explain.ts';

export function notFoundPage(app: FastifyInstance, ctx: AppContext): void {
  // Static routes win over this wildcard (find-my-way), so it only answers what nothing else does.
  app.get('/*', async (req, reply) => {
    if (!(req.headers.accept ?? '').includes('text/html')) {
      return reply.code(404).header('cache-control', 'no-store').send(NOT_FOUND_BODY);
    }
    return errorPage(ctx, reply, {
      heading: 'This page does not exist',
      message: 'There is nothing at this address on Latchkey. The link may be mistyped or out of date.',
      next: 'Apps send you to the right page when they need you. From the home page you can sign in and see the apps you connected.',
      link: { href: '/', label: 'Go to the home page' },
      code: 'not_found',
      status: 404,
    });
  });
}
