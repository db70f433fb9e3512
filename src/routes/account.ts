// A person's own account pages:
// - GET/POST /set-password: the one-time link from `latchkey user invite` or `user reset-password`, where a person
//   chooses their password (the link's secret is the proof; the form also carries a CSRF token);
// - GET/POST /account/password: a signed-in person changes their password (current one required); every other
//   session of theirs ends.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { hashPassword, verifyPassword } from '../lib/crypto.ts';
import { field } from '../signin/page.ts';
import { MIN_PASSWORD_LENGTH, newPasswordProblem } from '../signin/password-policy.ts';
import { errorPage } from '../web/explain.ts';
import { checkCsrf, cookieNames, csrfToken, currentSession, preSessionSecret } from '../web/session.ts';
import { renderPage } from '../web/views.ts';

/** The session, or a redirect to sign in that comes back to `page` afterwards. */
export async function requireSession(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  page: '/apps' | '/account/password',
) {
  const session = await currentSession(ctx, req);
  if (!session) {
    reply.header('cache-control', 'no-store').redirect(`/login?return_to=${encodeURIComponent(page)}`, 303);
  }
  return session;
}

/** The problem with a chosen password and its repetition, for the page; undefined when both are fine. */
function choiceProblem(password: string | undefined, again: string | undefined): string | undefined {
  if (!password) return 'Enter a new password.';
  const problem = newPasswordProblem(password);
  if (problem) return `${problem[0]!.toUpperCase()}${problem.slice(1)}.`;
  if (password !== again) return 'The two passwords do not match.';
  return undefined;
}

function linkUnusable(ctx: AppContext, reply: FastifyReply): Promise<FastifyReply> {
  return errorPage(ctx, reply, {
    heading: 'This link no longer works',
    message: 'A password link works once, for a limited time, and only the newest one sent to you works.',
    next: 'Ask whoever sent it (your administrator) for a new link.',
    code: 'invalid_token',
    status: 400,
  });
}

export function accountRoutes(app: FastifyInstance, ctx: AppContext): void {
  const setPasswordPage = (
    req: FastifyRequest,
    reply: FastifyReply,
    link: { token: string; email: string; purpose: 'invite' | 'reset' },
    extra: { error?: string; status?: number } = {},
  ) =>
    renderPage(
      ctx,
      reply,
      'set-password',
      {
        heading: link.purpose === 'invite' ? 'Choose your password' : 'Choose a new password',
        email: link.email,
        token: link.token,
        csrfToken: csrfToken(preSessionSecret(ctx, req, reply), 'password-link'),
        minLength: MIN_PASSWORD_LENGTH,
        error: extra.error,
      },
      { status: extra.status ?? 200 },
    );

  app.get('/set-password', async (req, reply) => {
    const token = field(req.query, 'token') ?? '';
    const link = await ctx.stores.accounts.checkPasswordLink(token, ctx.clock.now());
    if (link.kind !== 'valid') return linkUnusable(ctx, reply);
    return setPasswordPage(req, reply, { token, email: link.user.email, purpose: link.purpose });
  });

  app.post('/set-password', async (req, reply) => {
    const token = field(req.body, 'token') ?? '';
    const link = await ctx.stores.accounts.checkPasswordLink(token, ctx.clock.now());
    if (link.kind !== 'valid') return linkUnusable(ctx, reply);
    const shown = { token, email: link.user.email, purpose: link.purpose };
    const secret = req.cookies[cookieNames(ctx.config.issuer).preSession];
    if (!checkCsrf(secret, 'password-link', field(req.body, 'csrf_token'))) {
      return setPasswordPage(req, reply, shown, {
        error: 'This form expired. Please try again.',
        status: 403,
      });
    }
    const password = field(req.body, 'new_password');
    const problem = choiceProblem(password, field(req.body, 'confirm_password'));
    if (problem) return setPasswordPage(req, reply, shown, { error: problem, status: 400 });
    const user = await ctx.stores.accounts.usePasswordLink(
      token,
      await hashPassword(password!),
      ctx.clock.now(),
    );
    if (!user) return linkUnusable(ctx, reply);
    req.log.info({ userId: user.id, purpose: link.purpose }, 'password set from a link');
    return renderPage(ctx, reply, 'message', {
      heading: 'Your password is set',
      message: `You can now sign in as ${user.email}.`,
      link: { href: '/login', label: 'Sign in', primary: true },
    });
  });

  const changePage = (
    reply: FastifyReply,
    session: { token: string; email: string },
    extra: { error?: string; status?: number } = {},
  ) =>
    renderPage(
      ctx,
      reply,
      'change-password',
      {
        email: session.email,
        csrfToken: csrfToken(session.token, 'account'),
        minLength: MIN_PASSWORD_LENGTH,
        error: extra.error,
      },
      { status: extra.status ?? 200 },
    );

  app.get('/account/password', async (req, reply) => {
    const session = await requireSession(ctx, req, reply, '/account/password');
    if (!session) return reply;
    return changePage(reply, { token: session.token, email: session.session.user.email });
  });

  app.post('/account/password', async (req, reply) => {
    const session = await requireSession(ctx, req, reply, '/account/password');
    if (!session) return reply;
    const { user } = session.session;
    const shown = { token: session.token, email: user.email };
    if (!checkCsrf(session.token, 'account', field(req.body, 'csrf_token'))) {
      return changePage(reply, shown, { error: 'This form expired. Please try again.', status: 403 });
    }
    // Guessing the current password from a stolen session is throttled like sign-in is.
    const limitKey = `password-change:${user.id}`;
    const limit = await ctx.stores.rateLimits.hit(
      limitKey,
      ctx.config.loginMaxAttemptsPerAccount,
      ctx.config.loginThrottleWindow,
      ctx.clock.now(),
    );
    if (!limit.allowed) {
      reply.header(
        'retry-after',
        String(Math.ceil((limit.resetAt.getTime() - ctx.clock.now().getTime()) / 1000)),
      );
      return changePage(reply, shown, { error: 'Too many attempts. Try again later.', status: 429 });
    }
    if (!(await verifyPassword(field(req.body, 'current_password') ?? '', user.passwordHash))) {
      return changePage(reply, shown, { error: 'Your current password is not correct.', status: 400 });
    }
    const password = field(req.body, 'new_password');
    const problem = choiceProblem(password, field(req.body, 'confirm_password'));
    if (problem) return changePage(reply, shown, { error: problem, status: 400 });
    await ctx.stores.accounts.changePassword(
      user.id,
      await hashPassword(password!),
      session.session.id,
      ctx.clock.now(),
    );
    await ctx.stores.rateLimits.reset(limitKey);
    req.log.info({ userId: user.id }, 'password changed');
    return renderPage(ctx, reply, 'message', {
      heading: 'Your password is changed',
      message: 'You are still signed in here; everywhere else you were signed out.',
      link: { href: '/', label: 'Back to your account' },
    });
  });
}
