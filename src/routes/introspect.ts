// POST /introspect (RFC 7662). The caller must authenticate as a registered resource server (§2.1), with
// client_secret_basic or client_secret_post. A token is active only for the resource server it is bound to
// (RFC 8707 audience); everything else — unknown, expired, revoked, refresh tokens, another audience — is
// `{"active": false}` and nothing more (§2.2).
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import type { ResourceServer } from '../generated/prisma/client.ts';
import { hashSecret, verifySecret } from '../lib/crypto.ts';
import { quietLevel } from '../logger.ts';
import { ChangeCache } from '../oauth/change-cache.ts';
import { presentedCredentials } from '../oauth/client-auth.ts';
import { invalidClient } from '../oauth/errors.ts';
import { readForm } from '../oauth/form.ts';
import type { Params } from '../oauth/params.ts';
import { formatScope } from '../oauth/scopes.ts';
import { onAccessTokenIssued } from '../store/introspection.ts';
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
  /** `body` as sent, serialized by the route's schema the first time it is sent: a hot token is the same bytes. */
  json?: string;
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
const JSON_TYPE = 'application/json; charset=utf-8';

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

// Inactive answers (unknown, revoked, expired tokens) are kept this long, so a resource server flooded with bad tokens
// does not turn each into a query. Such an entry cannot hide a token issued later: a token is 256 random bits, so a
// hash presented while unknown is a future token's hash only if someone guessed that token (or SHA-256 collided);
// and a token issued by this process drops its hash at once (store/introspection.ts). Any change notification
// (a user enabled again) clears them, like every cache here (docs/security.md: Caches).
const INACTIVE_TTL_SECONDS = 5;

export function introspectRoutes(app: FastifyInstance, ctx: AppContext): void {
  const answers = new ChangeCache<ActiveAnswer>(ctx.changes, ctx.clock, {
    maxEntries: 50_000,
    ttlSeconds: 60,
  });
  const inactive = new ChangeCache<true>(ctx.changes, ctx.clock, {
    maxEntries: 10_000,
    ttlSeconds: INACTIVE_TTL_SECONDS,
  });
  const stopDropping = onAccessTokenIssued((hash) => inactive.delete(hash));
  app.addHook('onClose', async () => stopDropping());
  // Only a token Latchkey may have minted is looked up (docs/security.md: Token format): one with a valid tag, or an
  // untagged one while one minted before tags can still be live. Anything else is inactive without a statement, so
  // unknown tokens, each new, cost no round trip.
  const { tokenTags, clock } = ctx;
  const legacyUntil = tokenTags.legacyUntil(ctx.config.accessTokenTtl);
  const now = () => clock.now();
  const mayBeLive = (token: string) => tokenTags.mayBeLive(token, TOKEN_PREFIX.access, legacyUntil, now);

  // The hot path (a cached caller, a cached answer) runs without an await, which costs a microtask hop even on a value:
  // these two return a value or a promise, and the handler awaits only a promise.
  function authenticateCaller(req: FastifyRequest, params: Params): ResourceServer | Promise<ResourceServer> {
    const { id, secret } = presentedCredentials(req, params, REALM);
    if (!id || secret === undefined) throw unauthorized('resource server authentication is required');
    // The cache holds rows, never a verdict: the secret is checked against the row's hash every time.
    const verified = (rs: ResourceServer | null | undefined): ResourceServer => {
      if (!rs || !verifySecret(secret, rs.secretHash))
        throw unauthorized('resource server authentication failed');
      return rs;
    };
    const cached = ctx.resourceServers.cached(id);
    return cached ? verified(cached) : ctx.resourceServers.findByClientId(id).then(verified);
  }

  function lookup(token: string, caller: ResourceServer): ActiveAnswer | Promise<ActiveAnswer | undefined> {
    const key = hashSecret(token);
    const cached = answers.get(key);
    ctx.metrics.introspectionCache(cached !== undefined);
    return cached ?? load(token, key, caller);
  }

  async function load(token: string, key: string, caller: ResourceServer): Promise<ActiveAnswer | undefined> {
    // The tag is checked after the answer cache (a hot token skips the HMAC), before anything else.
    if (!mayBeLive(token) || inactive.get(key)) return undefined;
    const [generation, inactiveGeneration] = [answers.generation, inactive.generation];
    const at = await ctx.stores.introspection.find(key);
    const now = ctx.clock.now();
    if (!at || at.revoked || at.expiresAt <= now || at.userDisabled) {
      inactive.set(key, true, inactiveGeneration);
      // A known client's token refused: its trace says which resource server asked and why (README: Client traces).
      if (at) ctx.traces.record(introspectionStep(at, now, caller));
      return undefined;
    }
    const answer: ActiveAnswer = {
      resourceServerId: at.resourceServerId,
      upstream: upstreamMember(
        at.upstreamProvider === null
          ? null
          : { provider: at.upstreamProvider, claims: at.upstreamClaims, revokedAt: null },
      ),
      body: {
        active: true,
        scope: formatScope(at.scopes),
        client_id: at.clientId,
        // A client acting for itself (client_credentials) is its own subject, and has no username.
        sub: at.userId ?? at.clientId,
        ...(at.userId !== null && at.userEmail !== null ? { username: at.userEmail } : {}),
        aud: at.audience,
        iss: ctx.config.issuer,
        exp: Math.floor(at.expiresAt.getTime() / 1000),
        iat: Math.floor(at.createdAt.getTime() / 1000),
        token_type: 'Bearer',
      },
    };
    answers.set(key, answer, generation, at.expiresAt);
    return answer;
  }

  const input = routeInput(ctx, 'api', {
    body: params({ token: text(), token_type_hint: text(), client_id: text(), client_secret: text() }),
  });
  const { logLevel } = ctx.config;
  const routeLevel = quietLevel(logLevel, true);
  // One logger for every quiet request, made once (at warn, or quieter when LOG_LEVEL is; see the route options).
  const quietLogger: FastifyBaseLogger = app.log.child({ route: '/introspect' }, { level: routeLevel });
  // The hot path: resource servers call it for every request they serve, so at LOG_LEVEL=info routine calls are not
  // logged one by one (failures still are); debug and trace show them.
  app.post(
    '/introspect',
    {
      logLevel: routeLevel,
      // A child logger per request costs a fifth of this route's throughput (measured); at the quiet level the
      // route logs through the server's own logger, and the error handler names the request id itself.
      ...(routeLevel !== 'debug' && routeLevel !== 'trace' ? { childLoggerFactory: () => quietLogger } : {}),
      ...input,
      schema: { ...input.schema, response: { 200: INTROSPECTION_RESPONSE } },
    },
    async (req, reply) => {
      reply.header('cache-control', 'no-store');
      const params = readForm(req);
      const authenticated = authenticateCaller(req, params);
      const caller = authenticated instanceof Promise ? await authenticated : authenticated;
      const token = params.require('token');
      // token_type_hint is only a hint (§2.1); refresh tokens are never active to a resource server.
      const found = token.startsWith(TOKEN_PREFIX.access) ? lookup(token, caller) : undefined;
      const answer = found instanceof Promise ? await found : found;
      const active = answer !== undefined && answer.resourceServerId === caller.id;
      ctx.metrics.introspection(active);
      if (!active) {
        if (answer) ctx.traces.record(audienceStep(answer.body.client_id, answer.body.aud, caller));
        return INACTIVE;
      }
      if (caller.exposeUpstreamClaims && answer.upstream)
        return { ...answer.body, upstream: answer.upstream };
      answer.json ??= reply.serialize(answer.body) as string;
      reply.type(JSON_TYPE); // a string of this type is sent as it is
      return answer.json;
    },
  );
}
