// Sign-in and sign-out on Latchkey's own pages. The ways a person proves who they are live in src/signin/; these
// routes check the form's CSRF token, run the configured method, and turn what it found into a page or a session:
// - GET /login shows every configured method;
// - POST /login finishes the form method (the password form);
// - POST /login/upstream/:id begins a redirect method, GET /login/upstream/:id/callback finishes it.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
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
import {
  checkCsrf,
  cookieNames,
  csrfToken,
  currentSession,
  endSession,
  startSession,
} from '../web/session.ts';
import { renderPage } from '../web/views.ts';

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
  await startSession(ctx, req, reply, outcome.userId, outcome.upstreamLoginId);
  req.log.info({ userId: outcome.userId, method: method.id }, 'signed in');
  return reply.redirect(returnTo, 303);
}

export function loginRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { config } = ctx;

  app.get('/', async (req, reply) => {
    const session = await currentSession(ctx, req);
    return renderPage(ctx, reply, 'message', {
      heading: 'Latchkey',
      message: session
        ? `You are signed in as ${session.session.user.email}.`
        : 'This is the sign-in service for your MCP connections. Apps send you here when they need your approval.',
      logoutToken: session ? csrfToken(session.token, 'logout') : undefined,
    });
  });

  app.get('/login', async (req, reply) => {
    const query = req.query as Record<string, unknown>;
    const returnTo = safeReturnTo(query.return_to);
    // ?provider=<id> (a resource that requires it): only that provider; an unknown id shows the full page.
    const only = typeof query.provider === 'string' ? ctx.signIn.redirect(query.provider)?.id : undefined;
    const session = await currentSession(ctx, req);
    // Signed in already: back to where the person was going, unless a required provider is still missing.
    const login = session?.session.upstreamLogin;
    const satisfied = !only || (login?.provider === only && !login.revokedAt);
    if (session && satisfied) return reply.redirect(returnTo, 302);
    return loginPage(ctx, req, reply, returnTo, { only });
  });

  app.post('/login/cancel', async (req, reply) => {
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

  app.post('/login', async (req, reply) => {
    const method = ctx.signIn.form;
    if (!method) return reply.callNotFound();
    const returnTo = safeReturnTo(field(req.body, 'return_to'));
    const input = signInInput(ctx, req, req.body, returnTo);
    const values = method.formValues(input);
    if (!checkCsrf(input.browserSecret, 'login', field(req.body, 'csrf_token'))) {
      return loginPage(ctx, req, reply, returnTo, { error: FORM_EXPIRED, values, status: 403 });
    }
    const outcome = await method.finish(input);
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
        return loginPage(ctx, req, reply, returnTo, {
          error: 'Email or password is incorrect.',
          values,
          status: 401,
        });
    }
  });

  app.post<{ Params: { id: string } }>('/login/upstream/:id', async (req, reply) => {
    const method = ctx.signIn.redirect(req.params.id);
    if (!method) return reply.callNotFound();
    const returnTo = safeReturnTo(field(req.body, 'return_to'));
    const input = signInInput(ctx, req, req.body, returnTo);
    if (!checkCsrf(input.browserSecret, 'login', field(req.body, 'csrf_token'))) {
      return loginPage(ctx, req, reply, returnTo, { error: FORM_EXPIRED, status: 403 });
    }
    const outcome = await method.begin(input);
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

  app.get<{ Params: { id: string } }>('/login/upstream/:id/callback', async (req, reply) => {
    const method = ctx.signIn.redirect(req.params.id);
    if (!method) return reply.callNotFound();
    // The callback carries no return_to of its own: the method kept it with the flow it began.
    const outcome = await method.finish(signInInput(ctx, req, req.query, '/'));
    const returnTo = safeReturnTo(outcome.returnTo);
    switch (outcome.kind) {
      case 'signed_in':
        return completeSignIn(ctx, req, reply, method, outcome, returnTo);
      case 'throttled':
        return throttledPage(ctx, req, reply, returnTo, outcome);
      case 'disabled':
        return loginPage(ctx, req, reply, returnTo, {
          error: 'This account cannot sign in here.',
          status: 403,
        });
      case 'refused':
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
        return loginPage(ctx, req, reply, returnTo, {
          error: 'This sign-in could not be completed. Start again.',
          status: 400,
        });
    }
  });

  app.get('/logout', async (req, reply) => {
    const session = await currentSession(ctx, req);
    return renderPage(ctx, reply, 'message', {
      heading: session ? 'Sign out?' : 'You are signed out',
      message: session ? `You are signed in as ${session.session.user.email}.` : 'You can close this window.',
      logoutToken: session ? csrfToken(session.token, 'logout') : undefined,
    });
  });

  app.post('/logout', async (req, reply) => {
    const token = req.cookies[cookieNames(config.issuer).session];
    if (token && checkCsrf(token, 'logout', field(req.body, 'csrf_token'))) await endSession(ctx, req, reply);
    return renderPage(ctx, reply, 'message', {
      heading: 'You are signed out',
      message: 'You can close this window.',
    });
  });
}
