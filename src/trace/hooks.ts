// The steps routes record (README: Client traces), built here so each route adds one short call.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import type { AuthorizationError, AuthorizationRequest } from '../oauth/authorization-request.ts';
import { parseBasicAuth } from '../oauth/client-auth.ts';
import { OAuthError } from '../oauth/errors.ts';
import { Params } from '../oauth/params.ts';
import type { IntrospectedToken } from '../store/introspection.ts';
import { REDIRECT_MISMATCH, type TraceStep, type TraceStepName } from './steps.ts';

/** A step of a valid authorization request, about its client and resource. */
export function requestStep(
  ar: AuthorizationRequest,
  step: TraceStepName,
  outcome = 'ok',
  detail?: string,
): TraceStep {
  return { clientId: ar.client.clientId, step, outcome, detail, resource: ar.resource.uri };
}

/** The client_id of the authorization request a sign-in will return to (`/authorize?…`), if any. */
export function clientIdOfReturnTo(returnTo: string): string | undefined {
  if (!returnTo.startsWith('/authorize?')) return undefined;
  return new URLSearchParams(returnTo.slice('/authorize?'.length)).get('client_id') ?? undefined;
}

type RefusedToken = Pick<IntrospectedToken, 'revoked' | 'grantRevoked' | 'expiresAt' | 'clientId'>;

/** An access token of a known client that /introspect answered inactive: which resource server asked, and why. */
export function introspectionStep(at: RefusedToken, now: Date, caller: { uri: string }): TraceStep {
  // A revoked grant revokes its tokens too: it is named first, as the cause.
  const why = at.grantRevoked
    ? 'grant revoked'
    : at.revoked
      ? 'token revoked'
      : at.expiresAt <= now
        ? 'token expired'
        : 'user disabled';
  return {
    clientId: at.clientId,
    step: 'introspection',
    outcome: 'inactive',
    detail: why,
    resource: caller.uri,
  };
}

/** A live token presented by a resource server it was not issued for (RFC 8707 audience). */
export function audienceStep(clientId: string, audience: string, caller: { uri: string }): TraceStep {
  const detail = `wrong audience: the token is for ${audience}`;
  return { clientId, step: 'introspection', outcome: 'inactive', detail, resource: caller.uri };
}

/** A /token answer: a refresh (refresh_token grant) or a token request of another grant type. */
export function tokenStep(
  clientId: string,
  grantType: string,
  params: Params,
  outcome: string,
  description?: string,
): TraceStep {
  const refresh = grantType === 'refresh_token';
  const detail = refresh ? description : `${grantType}${description ? `: ${description}` : ''}`;
  return {
    clientId,
    step: refresh ? 'refresh' : 'token',
    outcome,
    detail,
    resource: params.all('resource')[0],
  };
}

/** The client a /token request names, by Basic header or form, and its grant type; undefined without them. */
function tokenRequestOf(req: FastifyRequest) {
  if (typeof req.body !== 'object' || req.body === null) return undefined;
  const params = Params.from(req.body);
  const basic = parseBasicAuth(req.headers.authorization);
  const clientId = typeof basic === 'object' ? basic.id : params.all('client_id')[0];
  const grantType = params.all('grant_type')[0];
  return clientId === undefined || grantType === undefined ? undefined : { clientId, grantType, params };
}

/**
 * Route hooks that record every /token answer in the client's trace (README: Client traces): tokens issued, or the
 * OAuth error. A resource server's grant names no client, and the trace store drops steps of unknown client_ids.
 */
export function tokenTrace(ctx: AppContext) {
  return {
    onError: async (req: FastifyRequest, _reply: FastifyReply, err: Error): Promise<void> => {
      if (!(err instanceof OAuthError)) return;
      const r = tokenRequestOf(req);
      if (r) ctx.traces.record(tokenStep(r.clientId, r.grantType, r.params, err.code, err.description));
    },
    onResponse: async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const r = reply.statusCode === 200 ? tokenRequestOf(req) : undefined;
      if (r) ctx.traces.record(tokenStep(r.clientId, r.grantType, r.params, 'ok'));
    },
  };
}

/** A sign-in on the way to an authorization request, as a step of that request's client; none without one. */
export function signInStep(returnTo: string, methodId: string, kind: string): TraceStep | undefined {
  const clientId = clientIdOfReturnTo(returnTo);
  if (clientId === undefined) return undefined;
  return {
    clientId,
    step: 'sign_in',
    outcome: kind === 'signed_in' ? 'ok' : kind,
    detail: `method ${methodId}`,
  };
}

/**
 * An authorization error as a step, for a request whose client is known (an unknown client_id has no trace; a CIMD
 * URL's failed fetch is recorded by the CIMD cache). An error shown on Latchkey's page, not sent to the client, says
 * so: the client never hears of it.
 */
export function authorizeFailure(err: AuthorizationError, params: Params): TraceStep | undefined {
  if (err.clientId === undefined) return undefined;
  if (err.error.code === 'access_denied')
    return { clientId: err.clientId, step: 'consent', outcome: 'denied' };
  const onPage = err.redirectUri === undefined ? ' (shown on the error page, not redirected)' : '';
  const asked = params.all('redirect_uri')[0];
  const description = err.error.description ?? '';
  const detail =
    description.startsWith('redirect_uri is not registered') && asked !== undefined
      ? `${REDIRECT_MISMATCH}: ${asked}${onPage}`
      : `${description}${onPage}`;
  return {
    clientId: err.clientId,
    step: 'authorize',
    outcome: err.error.code,
    detail,
    resource: params.all('resource')[0],
  };
}
