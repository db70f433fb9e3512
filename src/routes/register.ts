// POST /register: OAuth 2.0 Dynamic Client Registration (RFC 7591). Only present when ALLOW_DYNAMIC_REGISTRATION
// is on. The pipeline: initial access token (§3, when REGISTRATION_ACCESS_TOKEN is set) → per-address rate limit
// → metadata validation (client-metadata.ts) → store → 201 with the registered metadata (§3.2.1).
// A client_secret is issued only when a secret auth method is asked for; it is shown once and stored hashed.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import type { Prisma } from '../generated/prisma/client.ts';
import { constantTimeEqual } from '../lib/crypto.ts';
import { type ClientMetadata, validateClientMetadata } from '../oauth/client-metadata.ts';
import { createClient } from '../oauth/client-registration.ts';
import { invalidToken, temporarilyUnavailable } from '../oauth/errors.ts';
import { jsonDocument, routeInput } from '../web/input.ts';

const RATE_LIMIT_WINDOW = 3600;
// Never kept in the stored copy of the request.
const SECRET_FIELDS = ['client_secret', 'client_secret_expires_at', 'registration_access_token'];

export function registerRoutes(app: FastifyInstance, ctx: AppContext): void {
  if (!ctx.config.allowDynamicRegistration) return;

  // A JSON document (RFC 7591 §3.1) of bounded text; which member has which type is validateClientMetadata's check.
  const input = routeInput(ctx, 'registration', { body: jsonDocument() });
  app.post('/register', {
    ...input,
    // Authentication and the rate limit run before the body is even parsed.
    onRequest: [async (req) => checkInitialAccessToken(ctx, req), async (req) => checkRateLimit(ctx, req)],
    handler: async (req, reply) => registerClient(ctx, req, reply),
  });
}

/** RFC 7591 §3: the server may require an initial access token, presented as an RFC 6750 bearer token. */
function checkInitialAccessToken(ctx: AppContext, req: FastifyRequest): void {
  const expected = ctx.config.registrationAccessToken;
  if (expected === undefined) return;
  const match = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
  if (!match) {
    // RFC 6750 §3.1: a request without credentials gets a challenge without an error code.
    throw invalidToken('an initial access token is required to register', true);
  }
  if (!constantTimeEqual(match[1]!, expected)) {
    throw invalidToken('the initial access token is not valid', false);
  }
}

async function checkRateLimit(ctx: AppContext, req: FastifyRequest): Promise<void> {
  const now = ctx.clock.now();
  const r = await ctx.stores.rateLimits.hit(
    `register:${req.ip}`,
    ctx.config.registrationRateLimit,
    RATE_LIMIT_WINDOW,
    now,
  );
  if (r.allowed) return;
  const retryAfter = Math.max(1, Math.ceil((r.resetAt.getTime() - now.getTime()) / 1000));
  req.log.warn({ remoteAddress: req.ip }, 'registration rate limit reached');
  throw temporarilyUnavailable('too many registrations from this address; try again later', retryAfter, 429);
}

async function registerClient(ctx: AppContext, req: FastifyRequest, reply: FastifyReply) {
  const metadata = validateClientMetadata(req.body, {
    source: 'registration',
    supportedScopes: ctx.config.scopes,
    allowedRedirectUriPatterns: ctx.config.allowedRedirectUriPatterns,
  });

  const now = ctx.clock.now();
  const { client, secret } = await createClient(
    ctx.stores.clients,
    'DYNAMIC',
    metadata,
    storedRequest(req.body),
    req.ip,
  );
  const clientId = client.clientId;
  ctx.metrics.registration('dcr');
  const detail = `dynamic registration (${metadata.tokenEndpointAuthMethod}): ${metadata.redirectUris.join(' ')}`;
  ctx.traces.record({ clientId, step: 'registration', outcome: 'ok', detail });
  req.log.info(
    { clientId, clientName: metadata.name, authMethod: metadata.tokenEndpointAuthMethod },
    'client registered',
  );

  return reply
    .code(201)
    .header('cache-control', 'no-store')
    .send(registrationResponse(clientId, now, metadata, secret));
}

/** RFC 7591 §3.2.1: client_id, client_id_issued_at, the secret when issued, and every registered field. */
function registrationResponse(
  clientId: string,
  issuedAt: Date,
  m: ClientMetadata,
  secret: string | undefined,
) {
  return {
    client_id: clientId,
    client_id_issued_at: Math.floor(issuedAt.getTime() / 1000),
    // 0: the secret does not expire (§3.2.1).
    ...(secret !== undefined && { client_secret: secret, client_secret_expires_at: 0 }),
    client_name: m.name,
    redirect_uris: m.redirectUris,
    grant_types: m.grantTypes,
    response_types: m.responseTypes,
    token_endpoint_auth_method: m.tokenEndpointAuthMethod,
    ...(m.scope !== undefined && { scope: m.scope }),
    ...(m.clientUri !== undefined && { client_uri: m.clientUri }),
    ...(m.logoUri !== undefined && { logo_uri: m.logoUri }),
  };
}

/** The request as received, for `latchkey client show`, minus anything secret. */
function storedRequest(body: unknown): Prisma.InputJsonValue {
  const copy = { ...(body as Record<string, Prisma.InputJsonValue>) };
  for (const f of SECRET_FIELDS) delete copy[f];
  return copy;
}
