// GET /apps: the apps a signed-in person approved, one per client and MCP server, with where each returns, what it
// may do, and when it was approved and last used. POST /apps/revoke (CSRF-checked) ends one: its grants and tokens
// are revoked, every instance is told before the answer (as /revoke does), and the remembered approval is
// forgotten, so the app's next request shows the consent page again (README: Connected apps).
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { field } from '../signin/page.ts';
import type { ConnectedApp } from '../store/grants.ts';
import { errorPage, formatWhen, hostsOf } from '../web/explain.ts';
import { checkCsrf, csrfToken } from '../web/session.ts';
import { renderPage } from '../web/views.ts';
import { requireSession } from './account.ts';

function describeApp(ctx: AppContext, a: ConnectedApp) {
  return {
    name: a.client.name,
    // Self-declared through dynamic registration: nobody vouches for the name (the consent page says so too).
    unverified: a.client.kind === 'DYNAMIC',
    publishedBy: a.client.kind === 'CIMD' ? hostsOf([a.client.clientId])[0] : undefined,
    redirectHosts: hostsOf(a.client.redirectUris),
    resourceName: a.resourceServer.name,
    scopes: a.scopes.map((s) => ctx.config.scopeDescriptions[s] ?? s),
    approvedAt: formatWhen(a.approvedAt),
    lastUsedAt: a.lastUsedAt ? formatWhen(a.lastUsedAt) : undefined,
    // Internal row ids, not the public client_id: a CIMD client_id is a URL, and these name one pair exactly.
    clientRef: a.client.id,
    resourceRef: a.resourceServer.id,
  };
}

export function appsRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get('/apps', async (req, reply) => {
    const session = await requireSession(ctx, req, reply, '/apps');
    if (!session) return reply;
    const apps = await ctx.stores.grants.listConnectedApps(session.session.userId);
    return renderPage(ctx, reply, 'apps', {
      email: session.session.user.email,
      apps: apps.map((a) => describeApp(ctx, a)),
      csrfToken: csrfToken(session.token, 'account'),
    });
  });

  app.post('/apps/revoke', async (req, reply) => {
    const session = await requireSession(ctx, req, reply, '/apps');
    if (!session) return reply;
    if (!checkCsrf(session.token, 'account', field(req.body, 'csrf_token'))) {
      return errorPage(ctx, reply, {
        heading: 'This page has expired',
        message: 'The list was opened before you last signed in, so nothing was revoked.',
        next: 'Open Connected apps again and revoke from there.',
        code: 'invalid_request',
        detail: 'csrf token mismatch',
        status: 403,
      });
    }
    {
      const revoked = await ctx.stores.grants.revokeConnectedApp(
        session.session.userId,
        field(req.body, 'client') ?? '',
        field(req.body, 'resource') ?? '',
        ctx.clock.now(),
        req.ip,
      );
      // Answer only once every instance's introspection cache has been told.
      if (revoked) ctx.metrics.revoked('user', 'grant');
      if (revoked) await ctx.changes.flush();
      req.log.info({ userId: session.session.userId, revoked }, 'connected app revoked');
    }
    // Post/redirect/get: a reload shows the list, never a resubmitted form.
    return reply.header('cache-control', 'no-store').redirect('/apps', 303);
  });
}
