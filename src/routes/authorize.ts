// GET /authorize: validates the request, then sends the person to sign in, shows the consent page, or — when an
// earlier approval covers the request and prompt≠consent — goes straight back to the client with a code.
// POST /authorize: records the decision from the consent page (CSRF-checked) and answers the client.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import {
  AuthorizationError,
  type AuthorizationRequest,
  authorizationResponseUrl,
  requestError,
  validateAuthorizationRequest,
} from '../oauth/authorization-request.ts';
import { recordClientUse } from '../oauth/client-registration.ts';
import { accessDenied, promptNoneError } from '../oauth/errors.ts';
import { Params } from '../oauth/params.ts';
import { isLoopbackHost } from '../oauth/redirect-uri.ts';
import { isSubset } from '../oauth/scopes.ts';
import { authorizeFailure, requestStep } from '../trace/hooks.ts';
import { errorPage, explainAuthorizationError, hostsOf } from '../web/explain.ts';
import { BOUNDED, params, routeInput, text } from '../web/input.ts';
import { checkCsrf, csrfToken, currentSession, type LiveSession } from '../web/session.ts';
import { renderPage } from '../web/views.ts';

// Until client_id and redirect_uri are known good, a problem is shown on the error page (RFC 6749 §4.1.2.1), so the
// schema holds those two to the rule and only bounds the rest; validateAuthorizationRequest checks the others and
// sends their errors back to the client.
const INVALID_REQUEST = 'This sign-in request is not valid';
const TRUSTED_FIRST = { client_id: text(), redirect_uri: text() };

function originOf(uri: string): string {
  return new URL(uri).origin;
}

/** Sends an authorization response: 302 after a GET, 303 after a POST (a 307 would re-POST the form). */
function redirectToClient(
  ctx: AppContext,
  reply: FastifyReply,
  method: string,
  redirectUri: string,
  values: Record<string, string | undefined>,
): FastifyReply {
  reply.header('cache-control', 'no-store');
  return reply.redirect(
    authorizationResponseUrl(redirectUri, ctx.config.issuer, values),
    method === 'POST' ? 303 : 302,
  );
}

async function answerError(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  err: AuthorizationError,
): Promise<FastifyReply> {
  const step = authorizeFailure(err, Params.from(req.method === 'POST' ? req.body : req.query));
  if (step) ctx.traces.record(step);
  if (err.redirectUri === undefined) {
    return errorPage(ctx, reply, {
      ...explainAuthorizationError(err.error),
      code: err.error.code,
      detail: err.error.description,
      status: 400,
    });
  }
  return redirectToClient(ctx, reply, req.method, err.redirectUri, {
    ...err.error.toJSON(),
    state: err.state,
  });
}

async function issueCode(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  ar: AuthorizationRequest,
  session: LiveSession,
): Promise<FastifyReply> {
  const now = ctx.clock.now();
  const code = await ctx.stores.grants.createAuthorizationCode(
    {
      userId: session.userId,
      clientId: ar.client.id,
      resourceServerId: ar.resource.id,
      redirectUri: ar.redirectUri,
      requestedResource: ar.requestedResource,
      codeChallenge: ar.codeChallenge,
      scopes: ar.scopes,
      upstreamLoginId: session.upstreamLoginId,
      address: req.ip,
    },
    ctx.config.codeTtl,
    now,
  );
  await recordClientUse(ctx.stores.clients, ar.client, now, req.log);
  ctx.traces.record(requestStep(ar, 'code_issued'));
  return redirectToClient(ctx, reply, req.method, ar.redirectUri, { code, state: ar.state });
}

function loginRedirect(req: FastifyRequest, reply: FastifyReply, provider?: string): FastifyReply {
  // Come back to this very request after signing in, minus prompt=login (already satisfied by then).
  const url = new URL(req.url, 'http://latchkey.invalid');
  const prompt = (url.searchParams.get('prompt') ?? '').split(' ').filter((p) => p && p !== 'login');
  if (prompt.length) url.searchParams.set('prompt', prompt.join(' '));
  else url.searchParams.delete('prompt');
  const only = provider ? `provider=${encodeURIComponent(provider)}&` : '';
  return reply.redirect(`/login?${only}return_to=${encodeURIComponent(`/authorize${url.search}`)}`, 302);
}

/** Spec federation §3.4: a resource may require a session signed in through one provider (never a password one). */
function satisfiesProvider(session: LiveSession, ar: AuthorizationRequest): boolean {
  const required = ar.resource.requiredUpstreamProvider;
  if (!required) return true;
  const login = session.upstreamLogin;
  return !!login && login.provider === required && !login.revokedAt;
}

/** The consent page's lines about the upstream sign-in (§3.6). */
function upstreamLines(ctx: AppContext, session: LiveSession, ar: AuthorizationRequest) {
  const login = session.upstreamLogin;
  if (!login || login.revokedAt) return {};
  const providerName = ctx.upstream.provider(login.provider)?.config.name ?? login.provider;
  const claims = (login.claims ?? {}) as {
    email?: string | null;
    username?: string | null;
    claims?: Record<string, unknown>;
  };
  const slug = claims.claims?.workspace_slug;
  const who = claims.email || claims.username || session.user.email;
  const workspace = typeof slug === 'string' && slug ? ` (workspace ${slug})` : '';
  return {
    upstreamSignedIn: `Signed in with ${providerName} as ${who}${workspace}`,
    upstreamTokenUse: (ar.resource.upstreamTokenProviders ?? []).includes(login.provider)
      ? `${ar.resource.name} will be able to use your ${providerName} account on your behalf.`
      : undefined,
  };
}

function describeScopes(ctx: AppContext, scopes: string[]) {
  return scopes.map((name) => ({ name, description: ctx.config.scopeDescriptions[name] ?? name }));
}

async function showConsent(
  ctx: AppContext,
  reply: FastifyReply,
  ar: AuthorizationRequest,
  session: { session: LiveSession; token: string },
): Promise<FastifyReply> {
  const isCimd = ar.client.kind === 'CIMD';
  // "Not you?" signs out and comes back to this very request, to sign in as someone else.
  const query = new URLSearchParams(ar.params.map((p): [string, string] => [p.name, p.value])).toString();
  return renderPage(
    ctx,
    reply,
    'consent',
    {
      clientName: ar.client.name,
      // A dynamically registered client chose its own name: nobody vouches for it (README: Pages).
      unverified: ar.client.kind === 'DYNAMIC',
      clientIdHost: isCimd ? hostsOf([ar.client.clientId])[0] : undefined,
      redirectHost: hostsOf([ar.redirectUri])[0],
      returnTo: `/authorize?${query}`,
      loopbackOnly: ar.client.redirectUris.every((u) => {
        try {
          return isLoopbackHost(new URL(u).hostname);
        } catch {
          return false;
        }
      }),
      userEmail: session.session.user.email,
      resourceName: ar.resource.name,
      resourceUri: ar.resource.uri,
      scopes: describeScopes(ctx, ar.scopes),
      params: ar.params,
      csrfToken: csrfToken(session.token, 'consent'),
      logoutToken: csrfToken(session.token, 'logout'),
      ...upstreamLines(ctx, session.session, ar),
    },
    { formTargets: [originOf(ar.redirectUri)] },
  );
}

/** OpenID Connect Core §3.1.2.6: prompt=none answers instead of showing a page. */
function answerPromptNone(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  ar: AuthorizationRequest,
  code: 'login_required' | 'consent_required',
  description: string,
): Promise<FastifyReply> {
  return answerError(ctx, req, reply, requestError(ar, promptNoneError(code, description)));
}

export function authorizeRoutes(app: FastifyInstance, ctx: AppContext): void {
  const getInput = { querystring: params(TRUSTED_FIRST, BOUNDED), heading: INVALID_REQUEST };
  app.get('/authorize', routeInput(ctx, 'page', getInput), async (req, reply) => {
    let ar: AuthorizationRequest;
    try {
      ar = await validateAuthorizationRequest(ctx, Params.from(req.query), req.log);
    } catch (err) {
      if (err instanceof AuthorizationError) return answerError(ctx, req, reply, err);
      throw err;
    }
    const session = await currentSession(ctx, req);
    if (!session || ar.prompt.has('login')) {
      if (!ar.prompt.has('none')) ctx.traces.record(requestStep(ar, 'authorize', 'ok', 'sent to sign in'));
      if (ar.prompt.has('none'))
        return answerPromptNone(ctx, req, reply, ar, 'login_required', 'the user is not signed in');
      return loginRedirect(req, reply, ar.resource.requiredUpstreamProvider ?? undefined);
    }
    if (!satisfiesProvider(session.session, ar)) {
      const required = ar.resource.requiredUpstreamProvider as string;
      if (ar.prompt.has('none'))
        return answerPromptNone(
          ctx,
          req,
          reply,
          ar,
          'login_required',
          `sign-in with ${required} is required`,
        );
      return loginRedirect(req, reply, required);
    }
    const consent = await ctx.stores.grants.findConsent(session.session.userId, ar.client.id, ar.resource.id);
    const covered = consent !== null && isSubset(ar.scopes, consent.scopes);
    if (covered && !ar.prompt.has('consent')) return issueCode(ctx, req, reply, ar, session.session);
    if (ar.prompt.has('none')) {
      return answerPromptNone(
        ctx,
        req,
        reply,
        ar,
        'consent_required',
        'the user has not approved this client',
      );
    }
    ctx.traces.record(requestStep(ar, 'authorize', 'ok', 'consent page shown'));
    return showConsent(ctx, reply, ar, session);
  });

  const postInput = {
    body: params({ ...TRUSTED_FIRST, csrf_token: text(), decision: text(32) }, BOUNDED),
    heading: INVALID_REQUEST,
  };
  app.post('/authorize', routeInput(ctx, 'page', postInput), async (req, reply) => {
    const body = Params.from(req.body);
    let ar: AuthorizationRequest;
    try {
      ar = await validateAuthorizationRequest(ctx, body, req.log);
    } catch (err) {
      if (err instanceof AuthorizationError) return answerError(ctx, req, reply, err);
      throw err;
    }
    const session = await currentSession(ctx, req);
    if (!session || !satisfiesProvider(session.session, ar)) {
      // The session ended (or no longer satisfies a required provider) while the page was open: sign in again
      // and come back to a fresh consent page.
      const query = new URLSearchParams(ar.params.map((p): [string, string] => [p.name, p.value])).toString();
      const required = ar.resource.requiredUpstreamProvider;
      const only = required ? `provider=${encodeURIComponent(required)}&` : '';
      return reply.redirect(`/login?${only}return_to=${encodeURIComponent(`/authorize?${query}`)}`, 303);
    }
    if (!checkCsrf(session.token, 'consent', body.toRecord().csrf_token)) {
      return errorPage(ctx, reply, {
        heading: 'This page has expired',
        message:
          'The approval form was sent from a page that is no longer valid (it may have been opened before you ' +
          'signed in again). Nothing was approved.',
        code: 'invalid_request',
        detail: 'csrf token mismatch',
        status: 403,
      });
    }
    const decision = body.toRecord().decision;
    const { userId } = session.session;
    if (decision !== 'approve') {
      await ctx.stores.audit.consentDenied(
        userId,
        ar.client.clientId,
        ar.resource.uri,
        req.ip,
        ctx.clock.now(),
      );
      return answerError(ctx, req, reply, requestError(ar, accessDenied('the user denied the request')));
    }
    ctx.traces.record(requestStep(ar, 'consent', 'given'));
    await ctx.stores.grants.saveConsent(
      userId,
      ar.client.id,
      ar.resource.id,
      ar.scopes,
      ctx.clock.now(),
      req.ip,
    );
    return issueCode(ctx, req, reply, ar, session.session);
  });
}
