// Sign-in and sign-out on Latchkey's own pages. The ways a person proves who they are live in src/signin/; these
// routes check the form's CSRF token, run the configured method, and turn what it found into a page or a session:
// - GET /login shows every configured method;
// - POST /login finishes the form method (the password form);
// - POST /login/upstream/:id begins a redirect method, GET /login/upstream/:id/callback finishes it.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { signInResult } from '../metrics/events.ts';
import type { SignInMethod, SignInOutcome } from '../signin/index.ts';
import {
  cancelSignIn,
  FORM_EXPIRED,
  field,
  loginPage,
  safeReturnTo,
  signInInput,
  throttledPage,
} from '../signin/page.ts';
import { signInStep } from '../trace/hooks.ts';
import { params, routeInput, text } from '../web/input.ts';
import {
  checkCsrf,
  cookieNames,
  csrfToken,
  currentSession,
  endSession,
  startSession,
} from '../web/session.ts';
import { renderPage } from '../web/views.ts';

// return_to carries a whole authorization request; an email is at most 320 characters (RFC 5321 §4.5.3.1); a
// password may hold any character but NUL, and is bounded so argon2id never hashes megabytes.
const RETURN_TO = text(16384);
const query = params({ return_to: RETURN_TO });
const csrfForm = params({ csrf_token: text(), return_to: RETURN_TO });
const passwordForm = params({
  email: text(320),
  password: text(1024, { controls: 'nul-only' }),
  csrf_token: text(),
  return_to: RETURN_TO,
});

/** One session for every method: the cookie, then back to where the person was going. */
async function completeSignIn(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  method: SignInMethod,
  outcome: SignInOutcome & { kind: 'signed_in' },
  returnTo: string,
): Promise<FastifyReply> {
  // Session fixation hygiene after an upstream sign-in: whatever session this browser had ends (its cookie is
  // replaced just below).
  const previous = req.cookies[cookieNames(ctx.config.issuer).session];
  if (outcome.upstreamLoginId && previous) await ctx.stores.sessions.revoke(previous, ctx.clock.now());
  await startSession(ctx, req, reply, outcome.userId, method.id, outcome.upstreamLoginId);
  req.log.info({ userId: outcome.userId, method: method.id }, 'signed in');
  return reply.redirect(returnTo, 303);
}

/**
 * A sign-in that did not succeed, in the audit trail (README: Audit trail): the account's id when the attempt named
 * one, never the email typed. Throttled attempts are not recorded: the throttle bounds the failures recorded.
 */
async function auditFailure(
  ctx: AppContext,
  req: FastifyRequest,
  method: SignInMethod,
  outcome: SignInOutcome & { userId?: string },
): Promise<void> {
  await ctx.stores.audit.record({
    action: 'sign_in',
    outcome: outcome.kind === 'invalid' || outcome.kind === 'incomplete' ? 'failure' : 'denied',
    actor: outcome.userId ? `user:${outcome.userId}` : 'system',
    subject: outcome.userId ?? null,
    address: req.ip,
    detail: { method: method.id, reason: outcome.kind },
    at: ctx.clock.now(),
  });
}

function traceSignIn(ctx: AppContext, returnTo: string, methodId: string, kind: string): void {
  const step = signInStep(returnTo, methodId, kind);
  if (step) ctx.traces.record(step);
}

export function loginRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { config } = ctx;

  app.get('/', routeInput(ctx, 'page', { querystring: query }), async (req, reply) => {
    const session = await currentSession(ctx, req);
    return renderPage(ctx, reply, 'home', {
      email: session?.session.user.email,
      logoutToken: session ? csrfToken(session.token, 'logout') : undefined,
    });
  });

  app.get('/login', routeInput(ctx, 'page', { querystring: query }), async (req, reply) => {
    const returnTo = safeReturnTo(field(req.query, 'return_to'));
    // ?provider=<id> (a resource that requires it): only that provider; an unknown id shows the full page.
    const provider = field(req.query, 'provider');
    const only = provider === undefined ? undefined : ctx.signIn.redirect(provider)?.id;
    const session = await currentSession(ctx, req);
    // Signed in already: back to where the person was going, unless a required provider is still missing.
    const login = session?.session.upstreamLogin;
    const satisfied = !only || (login?.provider === only && !login.revokedAt);
    if (session && satisfied) return reply.redirect(returnTo, 302);
    const notice = field(req.query, 'signed_out') === '1' ? 'You are signed out.' : undefined;
    return loginPage(ctx, req, reply, returnTo, { only, notice });
  });

  app.post('/login/cancel', routeInput(ctx, 'page', { body: csrfForm }), async (req, reply) => {
    const returnTo = safeReturnTo(field(req.body, 'return_to'));
    if (
      !checkCsrf(
        signInInput(ctx, req, req.body, returnTo).browserSecret,
        'login',
        field(req.body, 'csrf_token'),
      )
    ) {
      return loginPage(ctx, req, reply, returnTo, { error: FORM_EXPIRED, status: 403 });
    }
    return cancelSignIn(ctx, req, reply, returnTo);
  });

  app.post('/login', routeInput(ctx, 'page', { body: passwordForm }), async (req, reply) => {
    const method = ctx.signIn.form;
    if (!method) return reply.callNotFound();
    const returnTo = safeReturnTo(field(req.body, 'return_to'));
    const input = signInInput(ctx, req, req.body, returnTo);
    const values = method.formValues(input);
    if (!checkCsrf(input.browserSecret, 'login', field(req.body, 'csrf_token'))) {
      return loginPage(ctx, req, reply, returnTo, { error: FORM_EXPIRED, values, status: 403 });
    }
    const outcome = await method.finish(input);
    ctx.metrics.signIn(method.id, signInResult(outcome.kind));
    traceSignIn(ctx, returnTo, method.id, outcome.kind);
    switch (outcome.kind) {
      case 'signed_in':
        return completeSignIn(ctx, req, reply, method, outcome, returnTo);
      case 'refused':
        return loginPage(ctx, req, reply, returnTo, {
          error: outcome.message,
          values,
          status: outcome.status,
        });
      case 'incomplete':
        return loginPage(ctx, req, reply, returnTo, {
          error: 'Enter your email and password.',
          values,
          status: 400,
        });
      case 'throttled':
        return throttledPage(ctx, req, reply, returnTo, outcome, values);
      case 'invalid':
      case 'disabled':
        // The form never says whether an account exists or is disabled: one answer for every failure.
        req.log.info('sign-in failed');
        await auditFailure(ctx, req, method, outcome);
        return loginPage(ctx, req, reply, returnTo, {
          error: 'Email or password is incorrect.',
          values,
          status: 401,
        });
    }
  });

  const upstreamInput = routeInput(ctx, 'page', { body: csrfForm });
  app.post<{ Params: { id: string } }>('/login/upstream/:id', upstreamInput, async (req, reply) => {
    const method = ctx.signIn.redirect(req.params.id);
    if (!method) return reply.callNotFound();
    const returnTo = safeReturnTo(field(req.body, 'return_to'));
    const input = signInInput(ctx, req, req.body, returnTo);
    if (!checkCsrf(input.browserSecret, 'login', field(req.body, 'csrf_token'))) {
      return loginPage(ctx, req, reply, returnTo, { error: FORM_EXPIRED, status: 403 });
    }
    const outcome = await method.begin(input);
    if (outcome.kind === 'throttled') ctx.metrics.signIn(method.id, 'throttled');
    switch (outcome.kind) {
      case 'redirect':
        return reply.redirect(outcome.location, 303);
      case 'throttled':
        return throttledPage(ctx, req, reply, returnTo, outcome);
      case 'unavailable':
        return loginPage(ctx, req, reply, returnTo, {
          error: `${method.label} is not reachable right now. Try again in a moment.`,
          status: 502,
        });
    }
  });

  const callbackInput = routeInput(ctx, 'page', { querystring: params({}) });
  app.get<{ Params: { id: string } }>('/login/upstream/:id/callback', callbackInput, async (req, reply) => {
    const method = ctx.signIn.redirect(req.params.id);
    if (!method) return reply.callNotFound();
    // The callback carries no return_to of its own: the method kept it with the flow it began.
    const outcome = await method.finish(signInInput(ctx, req, req.query, '/'));
    ctx.metrics.signIn(method.id, signInResult(outcome.kind));
    const returnTo = safeReturnTo(outcome.returnTo);
    traceSignIn(ctx, returnTo, method.id, outcome.kind);
    switch (outcome.kind) {
      case 'signed_in':
        return completeSignIn(ctx, req, reply, method, outcome, returnTo);
      case 'throttled':
        return throttledPage(ctx, req, reply, returnTo, outcome);
      case 'disabled':
        await auditFailure(ctx, req, method, outcome);
        return loginPage(ctx, req, reply, returnTo, {
          error: 'This account cannot sign in here.',
          status: 403,
        });
      case 'refused':
        await auditFailure(ctx, req, method, outcome);
        if (outcome.page === 'error') {
          return renderPage(
            ctx,
            reply,
            'error',
            { heading: 'Sign-in failed', message: outcome.message },
            { status: outcome.status },
          );
        }
        return loginPage(ctx, req, reply, returnTo, { error: outcome.message, status: outcome.status });
      case 'incomplete':
      case 'invalid':
        req.log.info({ method: method.id }, 'sign-in failed');
        await auditFailure(ctx, req, method, outcome);
        return loginPage(ctx, req, reply, returnTo, {
          error: 'This sign-in could not be completed. Start again.',
          status: 400,
        });
    }
  });

  app.get('/logout', routeInput(ctx, 'page', { querystring: query }), async (req, reply) => {
    const session = await currentSession(ctx, req);
    return renderPage(ctx, reply, 'message', {
      heading: session ? 'Sign out?' : 'You are signed out',
      message: session ? `You are signed in as ${session.session.user.email}.` : 'You can close this window.',
      logoutToken: session ? csrfToken(session.token, 'logout') : undefined,
    });
  });

  app.post('/logout', routeInput(ctx, 'page', { body: csrfForm }), async (req, reply) => {
    const token = req.cookies[cookieNames(config.issuer).session];
    if (token && checkCsrf(token, 'logout', field(req.body, 'csrf_token'))) await endSession(ctx, req, reply);
    // "Not you?" on the consent page: sign in as someone else and carry on with the same request.
    const returnTo = safeReturnTo(field(req.body, 'return_to'));
    const still = await currentSession(ctx, req);
    if (still) {
      // The form's token did not match (an old page, or a forged request): ask again rather than claim success.
      return renderPage(ctx, reply, 'message', {
        heading: 'Sign out?',
        message: `You are still signed in as ${still.session.user.email}.`,
        logoutToken: csrfToken(still.token, 'logout'),
      });
    }
    if (returnTo !== '/') {
      reply.header('cache-control', 'no-store');
      return reply.redirect(`/login?return_to=${encodeURIComponent(returnTo)}&signed_out=1`, 303);
    }
    return renderPage(ctx, reply, 'message', {
      heading: 'You are signed out',
      message: 'You can close this window.',
      link: { href: '/login', label: 'Sign in again' },
    });
  });
}
