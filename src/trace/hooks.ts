// The steps routes record (README: Client traces), built here so each route adds one short call.
import type { AuthorizationError, AuthorizationRequest } from '../oauth/authorization-request.ts';
import type { Params } from '../oauth/params.ts';
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

interface RefusedToken {
  revokedAt: Date | null;
  expiresAt: Date;
  grant: { revokedAt: Date | null; user: { disabled: boolean } | null; client: { clientId: string } };
}

/** An access token of a known client that /introspect answered inactive: which resource server asked, and why. */
export function introspectionStep(at: RefusedToken, now: Date, caller: { uri: string }): TraceStep {
  // A revoked grant revokes its tokens too: it is named first, as the cause.
  const why = at.grant.revokedAt
    ? 'grant revoked'
    : at.revokedAt
      ? 'token revoked'
      : at.expiresAt <= now
        ? 'token expired'
        : 'user disabled';
  return {
    clientId: at.grant.client.clientId,
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
