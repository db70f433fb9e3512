// The sign-in page: every configured method (the form, then a button per redirect method), the alert, and the
// answer to too many attempts; and the narrow view of a request that a method receives. Used by routes/login.ts.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import {
  AuthorizationError,
  type AuthorizationRequest,
  authorizationResponseUrl,
  validateAuthorizationRequest,
} from '../oauth/authorization-request.ts';
import { accessDenied, invalidRequest, OAuthError } from '../oauth/errors.ts';
import { Params } from '../oauth/params.ts';
import { resolveResource } from '../oauth/resources.ts';
import { cookieNames, csrfToken, preSessionSecret } from '../web/session.ts';
import { renderPage } from '../web/views.ts';
import type { SignInInput } from './method.ts';

/** Latchkey's own pages that send a signed-out person to sign in first, and expect them back. */
export const ACCOUNT_PAGES = ['/apps', '/account/password'] as const;

/** Only our own authorization endpoint, account pages or the home page may be returned to: no open redirects. */
export function safeReturnTo(value: unknown): string {
  if (typeof value !== 'string') return '/';
  if ((ACCOUNT_PAGES as readonly string[]).includes(value)) return value;
  if (value.startsWith('/authorize?') && !value.includes('\\') && !/[\r\n]/.test(value)) {
    // Percent-encoded as a URL serializes it: a Location header carries only ASCII (Node refuses anything past
    // U+00FF with an error, and would send U+0080–U+00FF as single Latin-1 bytes).
    const url = new URL(value, 'http://latchkey.invalid');
    return `${url.pathname}${url.search}`;
  }
  return '/';
}

export function field(body: unknown, name: string): string | undefined {
  const v = (body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : undefined;
}

/** The authorization request a return_to carries (empty for '/'). */
function returnToParams(returnTo: string): URLSearchParams {
  return new URL(returnTo, 'http://latchkey.invalid').searchParams;
}

/** The name of the resource server an authorization request names (or the only one), for the page's text. */
async function resourceNameFor(ctx: AppContext, returnTo: string): Promise<string | undefined> {
  const resource = returnToParams(returnTo).getAll('resource');
  try {
    return (await resolveResource(resource, ctx.stores.resourceServers)).name;
  } catch {
    return undefined;
  }
}

/** The app the person is signing in for, and whether its name is only self-declared (dynamic registration). */
async function clientFor(
  ctx: AppContext,
  returnTo: string,
): Promise<{ clientName?: string; clientUnverified?: boolean }> {
  const clientId = returnToParams(returnTo).get('client_id');
  if (!clientId) return {};
  try {
    const client = await ctx.clients.resolve(clientId);
    return { clientName: client.name, clientUnverified: client.kind === 'DYNAMIC' };
  } catch {
    return {};
  }
}

export interface PageExtra {
  error?: string;
  /** A line that is not an error ("You are signed out."). */
  notice?: string | undefined;
  /** The form's submitted values to show again (the email, never the password). */
  values?: Record<string, string>;
  status?: number;
  /** Show only this redirect method (GET /login?provider=…): a resource requires it. */
  only?: string;
}

export async function loginPage(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  returnTo: string,
  extra: PageExtra = {},
): Promise<FastifyReply> {
  const secret = preSessionSecret(ctx, req, reply);
  const only = extra.only ? ctx.signIn.redirect(extra.only) : undefined;
  const form = only ? undefined : ctx.signIn.form;
  const redirects = only ? [only] : ctx.signIn.redirects;
  const resourceName = only ? await resourceNameFor(ctx, returnTo) : undefined;
  return renderPage(
    ctx,
    reply,
    'login',
    {
      csrfToken: csrfToken(secret, 'login'),
      returnTo,
      ...(await clientFor(ctx, returnTo)),
      error: extra.error,
      notice: extra.notice,
      // At the top level too, so an operator's login template (TEMPLATES_DIR) can keep reading `it.email`.
      ...extra.values,
      form: form && { template: `./${form.template}` },
      buttons: redirects.map((m) => ({ action: `/login/upstream/${m.id}`, label: m.buttonLabel })),
      needs: only && `${resourceName ?? 'This service'} needs you to sign in with ${only.label}.`,
      // A person who gives up can tell the client so (access_denied), instead of leaving it waiting.
      cancel: returnTo.startsWith('/authorize?'),
    },
    { status: extra.status ?? 200, formTargets: ctx.signIn.formTargets() },
  );
}

export function signInInput(
  ctx: AppContext,
  req: FastifyRequest,
  source: unknown,
  returnTo: string,
): SignInInput {
  return {
    param: (name) => field(source, name),
    ip: req.ip,
    browserSecret: req.cookies[cookieNames(ctx.config.issuer).preSession],
    returnTo,
    log: req.log,
  };
}

export const FORM_EXPIRED = 'This form expired. Please sign in again.';

/** The answer to too many attempts: 429 with Retry-After (RFC 6585 §4), in whole seconds and in minutes. */
export function throttledPage(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  returnTo: string,
  outcome: { limit: 'account' | 'address'; until: Date },
  values?: Record<string, string>,
): Promise<FastifyReply> {
  const ms = outcome.until.getTime() - ctx.clock.now().getTime();
  const minutes = Math.max(1, Math.ceil(ms / 60_000));
  req.log.warn({ throttled: outcome.limit }, 'sign-in throttled');
  reply.header('retry-after', String(Math.ceil(ms / 1000)));
  return loginPage(ctx, req, reply, returnTo, {
    error: `Too many sign-in attempts. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
    values,
    status: 429,
  });
}

/**
 * POST /login/cancel: the authorization request in return_to, validated again, answered with access_denied at the
 * client's redirect URI (with its state and iss); an invalid request gets the usual error page.
 */
export async function cancelSignIn(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  returnTo: string,
): Promise<FastifyReply> {
  const params = Object.fromEntries(returnToParams(returnTo));
  let ar: AuthorizationRequest;
  try {
    if (!returnTo.startsWith('/authorize?'))
      throw invalidRequest('there is no authorization request to cancel');
    ar = await validateAuthorizationRequest(ctx, Params.from(params), req.log);
  } catch (err) {
    if (!(err instanceof AuthorizationError || err instanceof OAuthError)) throw err;
    const error = err instanceof AuthorizationError ? err.error : err;
    return renderPage(
      ctx,
      reply,
      'error',
      { heading: 'This sign-in request is not valid', message: error.description, code: error.code },
      { status: 400 },
    );
  }
  reply.header('cache-control', 'no-store');
  return reply.redirect(
    authorizationResponseUrl(ar.redirectUri, ctx.config.issuer, {
      ...accessDenied('the user cancelled sign-in').toJSON(),
      state: ar.state,
    }),
    303,
  );
}
