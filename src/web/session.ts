// The browser session cookie and CSRF tokens for Latchkey's forms.
// CSRF tokens are derived from a secret the browser holds in an HttpOnly cookie (the session id once signed in,
// a pre-session cookie on the sign-in page): the same for every render of a page, so a reload or a duplicate
// GET never invalidates an open form, and never stored or usable without the cookie.
import type {} from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { constantTimeEqual, hashSecret, randomToken } from '../lib/crypto.ts';
import type { LiveSessionRow } from '../store/sessions.ts';

export interface CookieNames {
  session: string;
  preSession: string;
}

/** `__Host-` cookies (RFC 6265bis §4.1.3.2) need Secure, so plain-http development issuers use plain names. */
export function cookieNames(issuer: string): CookieNames {
  const secure = issuer.startsWith('https:');
  return {
    session: secure ? '__Host-latchkey_session' : 'latchkey_session',
    preSession: secure ? '__Host-latchkey_csrf' : 'latchkey_csrf',
  };
}

function cookieOptions(ctx: AppContext, maxAge?: number) {
  return {
    path: '/',
    httpOnly: true,
    sameSite: 'lax' as const,
    secure: ctx.config.issuer.startsWith('https:'),
    ...(maxAge !== undefined ? { maxAge } : {}),
  };
}

function lifetimes(ctx: AppContext) {
  return { idleTtl: ctx.config.sessionIdleTtl, absoluteTtl: ctx.config.sessionTtl };
}

export type LiveSession = LiveSessionRow;

export async function currentSession(
  ctx: AppContext,
  req: FastifyRequest,
): Promise<{ session: LiveSession; token: string } | null> {
  const token = req.cookies[cookieNames(ctx.config.issuer).session];
  if (!token || token.length > 100) return null;
  const session = await ctx.stores.sessions.findLive(token, ctx.clock.now(), lifetimes(ctx));
  return session ? { session, token } : null;
}

export async function startSession(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
  userId: string,
  method: string,
  upstreamLoginId?: string,
): Promise<void> {
  const token = await ctx.stores.sessions.create(
    userId,
    ctx.clock.now(),
    lifetimes(ctx),
    req.headers['user-agent'],
    upstreamLoginId,
    { method, address: req.ip },
  );
  reply.setCookie(cookieNames(ctx.config.issuer).session, token, cookieOptions(ctx, ctx.config.sessionTtl));
}

export async function endSession(ctx: AppContext, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const names = cookieNames(ctx.config.issuer);
  const token = req.cookies[names.session];
  if (token) await ctx.stores.sessions.revoke(token, ctx.clock.now());
  reply.clearCookie(names.session, cookieOptions(ctx));
}

/** The pre-session secret for the sign-in form, set on first visit and kept across reloads. */
export function preSessionSecret(ctx: AppContext, req: FastifyRequest, reply: FastifyReply): string {
  const name = cookieNames(ctx.config.issuer).preSession;
  const existing = req.cookies[name];
  if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
  const secret = randomToken(32);
  reply.setCookie(name, secret, cookieOptions(ctx));
  req.cookies[name] = secret;
  return secret;
}

/** What a form is for: a token for one purpose is refused by every other form. */
export type CsrfPurpose = 'login' | 'consent' | 'logout' | 'account' | 'password-link';

export function csrfToken(secret: string, purpose: CsrfPurpose): string {
  return hashSecret(`latchkey-csrf:${purpose}:${secret}`);
}

export function checkCsrf(secret: string | undefined, purpose: CsrfPurpose, presented: unknown): boolean {
  if (!secret || typeof presented !== 'string') return false;
  return constantTimeEqual(csrfToken(secret, purpose), presented);
}
