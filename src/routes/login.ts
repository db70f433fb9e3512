// Sign-in and sign-out on Latchkey's own pages.
// Failed attempts are throttled per account and per client address (in the database, so every instance shares
// the count); the answer never reveals whether an email exists, and an unknown email costs the same argon2id
// verification as a known one.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { hashSecret, verifyPassword } from '../lib/crypto.ts';
import { normalizeEmail } from '../store/users.ts';
import {
  checkCsrf,
  cookieNames,
  csrfToken,
  currentSession,
  endSession,
  preSessionSecret,
  startSession,
} from '../web/session.ts';
import { renderPage } from '../web/views.ts';

/** Only our own authorization endpoint (or the home page) may be returned to: no open redirects. */
export function safeReturnTo(value: unknown): string {
  if (typeof value !== 'string') return '/';
  if (value.startsWith('/authorize?') && !value.includes('\\') && !/[\r\n]/.test(value)) return value;
  return '/';
}

function field(body: unknown, name: string): string | undefined {
  const v = (body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : undefined;
}

async function clientNameFor(ctx: AppContext, returnTo: string): Promise<string | undefined> {
  const clientId = new URL(returnTo, 'http://latchkey.invalid').searchParams.get('client_id');
  if (!clientId) return undefined;
  try {
    return (await ctx.clients.resolve(clientId)).name;
  } catch {
    return undefined;
  }
}

async function loginPage(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  returnTo: string,
  extra: { error?: string; email?: string; status?: number } = {},
): Promise<FastifyReply> {
  const secret = preSessionSecret(ctx, req, reply);
  return renderPage(
    ctx,
    reply,
    'login',
    {
      csrfToken: csrfToken(secret, 'login'),
      returnTo,
      clientName: await clientNameFor(ctx, returnTo),
      error: extra.error,
      email: extra.email,
    },
    { status: extra.status ?? 200 },
  );
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
    const returnTo = safeReturnTo((req.query as Record<string, unknown>).return_to);
    if (await currentSession(ctx, req)) return reply.redirect(returnTo, 302);
    return loginPage(ctx, req, reply, returnTo);
  });

  app.post('/login', async (req, reply) => {
    const returnTo = safeReturnTo(field(req.body, 'return_to'));
    const email = normalizeEmail(field(req.body, 'email') ?? '');
    const password = field(req.body, 'password') ?? '';
    const secret = req.cookies[cookieNames(config.issuer).preSession];
    if (!checkCsrf(secret, 'login', field(req.body, 'csrf_token'))) {
      return loginPage(ctx, req, reply, returnTo, {
        error: 'This form expired. Please sign in again.',
        email,
        status: 403,
      });
    }
    if (!email || !password) {
      return loginPage(ctx, req, reply, returnTo, {
        error: 'Enter your email and password.',
        email,
        status: 400,
      });
    }

    const now = ctx.clock.now();
    const accountKey = `login:account:${hashSecret(email)}`;
    const window = config.loginThrottleWindow;
    const [perAccount, perAddress] = await Promise.all([
      ctx.stores.rateLimits.hit(accountKey, config.loginMaxAttemptsPerAccount, window, now),
      ctx.stores.rateLimits.hit(`login:address:${req.ip}`, config.loginMaxAttemptsPerAddress, window, now),
    ]);
    if (!perAccount.allowed || !perAddress.allowed) {
      const resetAt = Math.max(
        perAccount.allowed ? 0 : perAccount.resetAt.getTime(),
        perAddress.allowed ? 0 : perAddress.resetAt.getTime(),
      );
      const minutes = Math.max(1, Math.ceil((resetAt - now.getTime()) / 60_000));
      req.log.warn({ throttled: perAccount.allowed ? 'address' : 'account' }, 'sign-in throttled');
      reply.header('retry-after', String(Math.ceil((resetAt - now.getTime()) / 1000)));
      return loginPage(ctx, req, reply, returnTo, {
        error: `Too many sign-in attempts. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
        email,
        status: 429,
      });
    }

    const user = await ctx.stores.users.findByEmail(email);
    const ok = await verifyPassword(password, user?.passwordHash);
    if (!user || !ok || user.disabled) {
      req.log.info('sign-in failed');
      return loginPage(ctx, req, reply, returnTo, {
        error: 'Email or password is incorrect.',
        email,
        status: 401,
      });
    }
    await ctx.stores.rateLimits.reset(accountKey);
    await startSession(ctx, req, reply, user.id);
    req.log.info({ userId: user.id }, 'signed in');
    return reply.redirect(returnTo, 303);
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
