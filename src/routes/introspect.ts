// POST /introspect (RFC 7662). The caller must authenticate as a registered resource server (§2.1), with
// client_secret_basic or client_secret_post. A token is active only for the resource server it is bound to
// (RFC 8707 audience); everything else — unknown, expired, revoked, refresh tokens, another audience — is
// `{"active": false}` and nothing more (§2.2).
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import type { ResourceServer } from '../generated/prisma/client.ts';
import { hashSecret, verifySecret } from '../lib/crypto.ts';
import { presentedCredentials } from '../oauth/client-auth.ts';
import { invalidClient } from '../oauth/errors.ts';
import { readForm } from '../oauth/form.ts';
import { IntrospectionCache } from '../oauth/introspection-cache.ts';
import type { Params } from '../oauth/params.ts';
import { formatScope } from '../oauth/scopes.ts';
import { TOKEN_PREFIX } from '../store/tokens.ts';
import { audienceStep, introspectionStep } from '../trace/hooks.ts';
import { UPSTREAM_MEMBER_SCHEMA, type UpstreamMember, upstreamMember } from '../upstream/claims.ts';
import { params, routeInput, text } from '../web/input.ts';

// RFC 7662 §2.1: only resource servers may introspect; every failure is challenged.
const REALM = 'latchkey-introspection';
const unauthorized = (description: string) => invalidClient(description, REALM);

interface ActiveAnswer {
  resourceServerId: string;
  /** Kept apart from the body: added only for callers with expose_upstream_claims (spec federation §6.1, I2). */
  upstream: UpstreamMember | undefined;
  body: {
    active: true;
    scope: string;
    client_id: string;
    sub: string;
    username?: string;
    aud: string;
    iss: string;
    exp: number;
    iat: number;
    token_type: 'Bearer';
  };
}

const INACTIVE = Object.freeze({ active: false });

// RFC 7662 §2.2 members; a schema lets Fastify serialize the hot path's answer without generic JSON.stringify.
const INTROSPECTION_RESPONSE = {
  type: 'object',
  required: ['active'],
  properties: {
    active: { type: 'boolean' },
    scope: { type: 'string' },
    client_id: { type: 'string' },
    sub: { type: 'string' },
    username: { type: 'string' },
    aud: { type: 'string' },
    iss: { type: 'string' },
    exp: { type: 'integer' },
    iat: { type: 'integer' },
    token_type: { type: 'string' },
    upstream: UPSTREAM_MEMBER_SCHEMA,
  },
} as const;

export function introspectRoutes(app: FastifyInstance, ctx: AppContext): void {
  const answers = new IntrospectionCache<ActiveAnswer>(ctx.clock);
  const callers = new Map<string, ResourceServer>();
  answers.setListening(ctx.changes.listening);
  ctx.changes.subscribe((listening) => {
    if (listening !== answers.enabled) answers.setListening(listening);
    answers.clear();
    callers.clear();
  });

  async function authenticateCaller(req: FastifyRequest, params: Params): Promise<ResourceServer> {
    const { id, secret } = presentedCredentials(req, params, REALM);
    if (!id || secret === undefined) throw unauthorized('resource server authentication is required');
    let rs = answers.enabled ? callers.get(id) : undefined;
    if (!rs) {
      rs = (await ctx.stores.resourceServers.findByClientId(id)) ?? undefined;
      if (rs && answers.enabled && callers.size < 10_000) callers.set(id, rs);
    }
    if (!rs || !verifySecret(secret, rs.secretHash))
      throw unauthorized('resource server authentication failed');
    return rs;
  }

  async function lookup(token: string, caller: ResourceServer): Promise<ActiveAnswer | undefined> {
    const key = hashSecret(token);
    const cached = answers.get(key);
    ctx.metrics.introspectionCache(cached !== undefined);
    if (cached) return cached;
    const at = await ctx.stores.tokens.findAccessToken(token);
    const now = ctx.clock.now();
    if (!at || at.revokedAt || at.grant.revokedAt || at.expiresAt <= now || at.grant.user?.disabled) {
      // A known client's token refused: its trace says which resource server asked and why (README: Client traces).
      if (at) ctx.traces.record(introspectionStep(at, now, caller));
      return undefined;
    }
    const { user, client } = at.grant;
    const answer: ActiveAnswer = {
      resourceServerId: at.grant.resourceServerId,
      upstream: upstreamMember(at.grant.upstreamLogin),
      body: {
        active: true,
        scope: formatScope(at.scopes),
        client_id: client.clientId,
        // A client acting for itself (client_credentials) is its own subject, and has no username.
        sub: user ? user.id : client.clientId,
        ...(user ? { username: user.email } : {}),
        aud: at.grant.resourceServer.uri,
        iss: ctx.config.issuer,
        exp: Math.floor(at.expiresAt.getTime() / 1000),
        iat: Math.floor(at.createdAt.getTime() / 1000),
        token_type: 'Bearer',
      },
    };
    answers.set(key, answer, at.expiresAt);
    return answer;
  }

  const input = routeInput(ctx, 'api', {
    body: params({ token: text(), token_type_hint: text(), client_id: text(), client_secret: text() }),
  });
  const { logLevel } = ctx.config;
  const quietLevel = logLevel === 'debug' || logLevel === 'trace' ? logLevel : 'warn';
  // One logger for every quiet request, made once (its level is never below warn; see the route options).
  const quietLogger: FastifyBaseLogger = app.log.child({ route: '/introspect' }, { level: quietLevel });
  // The hot path: resource servers call it for every request they serve, so at LOG_LEVEL=info routine calls are not
  // logged one by one (failures still are); debug and trace show them.
  app.post(
    '/introspect',
    {
      logLevel: quietLevel,
      // A child logger per request costs a fifth of this route's throughput (measured); at the quiet level the
      // route logs through the server's own logger, and the error handler names the request id itself.
      ...(quietLevel === 'warn' ? { childLoggerFactory: () => quietLogger } : {}),
      ...input,
      schema: { ...input.schema, response: { 200: INTROSPECTION_RESPONSE } },
    },
    async (req, reply) => {
      reply.header('cache-control', 'no-store');
      const params = readForm(req);
      const caller = await authenticateCaller(req, params);
      const token = params.require('token');
      // token_type_hint is only a hint (§2.1); refresh tokens are never active to a resource server.
      const answer = token.startsWith(TOKEN_PREFIX.access) ? await lookup(token, caller) : undefined;
      const active = answer !== undefined && answer.resourceServerId === caller.id;
      ctx.metrics.introspection(active);
      if (!active) {
        if (answer) ctx.traces.record(audienceStep(answer.body.client_id, answer.body.aud, caller));
        return INACTIVE;
      }
      if (caller.exposeUpstreamClaims && answer.upstream)
        return { ...answer.body, upstream: answer.upstream };
      return answer.body;
    },
  );
}
