// POST /revoke (RFC 7009). The client authenticates as at the token endpoint. Revoking a refresh token revokes
// its whole grant; revoking an access token revokes that token. Unknown tokens, and tokens of other clients,
// answer 200 and change nothing (§2.2), so the endpoint reveals nothing about tokens it did not issue to you.
// The person's remembered approval stays: an app signing itself out is not the person withdrawing consent (README:
// Connected apps).
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { authenticateClient } from '../oauth/client-auth.ts';
import { readForm } from '../oauth/form.ts';
import { TOKEN_PREFIX } from '../store/tokens.ts';
import { params, routeInput, text } from '../web/input.ts';

const INPUT = {
  body: params({ token: text(), token_type_hint: text(), client_id: text(), client_secret: text() }),
};

export function revokeRoutes(app: FastifyInstance, ctx: AppContext): void {
  // A token Latchkey did not mint (docs/security.md: Token format) is not looked up: it is unknown, so 200 (§2.2).
  const { tokenTags, config } = ctx;
  const refreshUntil = tokenTags.legacyUntil(config.refreshTokenTtl);
  const accessUntil = tokenTags.legacyUntil(config.accessTokenTtl);
  const clockNow = () => ctx.clock.now();
  app.post('/revoke', routeInput(ctx, 'api', INPUT), async (req, reply) => {
    reply.header('cache-control', 'no-store');
    const params = readForm(req);
    const client = await authenticateClient(ctx, req, params);
    const token = params.require('token');
    const now = ctx.clock.now();
    if (tokenTags.mayBeLive(token, TOKEN_PREFIX.refresh, refreshUntil, clockNow)) {
      const rt = await ctx.stores.tokens.findRefreshToken(token);
      if (rt && rt.grant.clientId === client.id) {
        if (await ctx.stores.grants.revokeGrant(rt.grantId, 'client', now, { address: req.ip }))
          ctx.metrics.revoked('client', 'grant');
        await ctx.changes.flush();
      }
    } else if (tokenTags.mayBeLive(token, TOKEN_PREFIX.access, accessUntil, clockNow)) {
      const at = await ctx.stores.tokens.findAccessToken(token);
      if (at && at.grant.clientId === client.id) {
        await ctx.stores.tokens.revokeAccessToken(at.id, now);
        ctx.metrics.revoked('client', 'access_token');
        // Answer only once every instance's introspection cache has been told (RFC 7009 §2.2: at once).
        await ctx.changes.flush();
      }
    }
    return reply.code(200).send();
  });
}
