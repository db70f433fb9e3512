// The one-line diagnosis `latchkey trace` prints under a client's timeline (README: Client traces): the usual ways a
// connector fails between registration and /token, read from the steps Latchkey saw. A pure function of the steps.
import { REDIRECT_MISMATCH, REFRESH_REPLAY, type TraceStepName } from './steps.ts';

export interface DiagnosedStep {
  at: Date;
  step: TraceStepName | string;
  outcome: string;
  detail: string | null;
  resource: string | null;
}

export type DiagnosisKind =
  | 'nothing_seen'
  | 'cimd_fetch_failed'
  | 'registration_refused'
  | 'registered_only'
  | 'redirect_uri_mismatch'
  | 'resource_not_registered'
  | 'authorize_refused'
  | 'stopped_at_sign_in'
  | 'sign_in_failed'
  | 'consent_denied'
  | 'code_not_redeemed'
  | 'token_refused'
  | 'refresh_replay'
  | 'introspection_inactive'
  | 'ok';

export interface Diagnosis {
  kind: DiagnosisKind;
  message: string;
}

const isToken = (s: DiagnosedStep) => s.step === 'token' || s.step === 'refresh';
const time = (d: Date) => `${d.toISOString().slice(0, 19).replace('T', ' ')}Z`;
const said = (s: DiagnosedStep) => (s.detail ? ` (${s.detail})` : '');

/** A refresh refused as a replay since the client last got tokens: every later refresh fails too. */
function replayed(steps: readonly DiagnosedStep[]): DiagnosedStep | undefined {
  for (let i = steps.length - 1; i >= 0; i--) {
    const s = steps[i]!;
    if (isToken(s) && s.outcome === 'ok') return undefined;
    if (s.step === 'refresh' && s.outcome === 'invalid_grant' && s.detail?.startsWith(REFRESH_REPLAY))
      return s;
  }
  return undefined;
}

/** What went wrong (or that nothing did), judged from a client's steps, oldest first. */
export function diagnose(steps: readonly DiagnosedStep[]): Diagnosis {
  const last = steps.at(-1);
  if (!last) {
    return {
      kind: 'nothing_seen',
      message:
        'nothing seen: no step of this client_id was recorded (is it the client_id the client uses? a refused ' +
        'dynamic registration has no client_id, and TRACE_STEPS=0 records nothing)',
    };
  }
  const replay = replayed(steps);
  if (replay) {
    return {
      kind: 'refresh_replay',
      message:
        `invalid_grant on refresh after a replay: at ${time(replay.at)} a refresh token was used a second time, so ` +
        'the grant was revoked and the client must sign in again (a client that refreshes twice at once needs ' +
        'REFRESH_REUSE_WINDOW)',
    };
  }
  const { step, outcome } = last;
  if (step === 'cimd_fetch' && outcome === 'failed')
    return {
      kind: 'cimd_fetch_failed',
      message: `CIMD fetch failed${said(last)}: the client_id URL must serve its metadata document`,
    };
  if (step === 'cimd_fetch' && outcome === 'refused')
    return {
      kind: 'registration_refused',
      message: `registration refused: the client metadata document was refused${said(last)}`,
    };
  if (step === 'registration' && outcome !== 'ok')
    return { kind: 'registration_refused', message: `registration refused${said(last)}` };
  if ((step === 'registration' || step === 'cimd_fetch') && outcome === 'ok')
    return {
      kind: 'registered_only',
      message: 'registered, then nothing: the client never sent anyone to /authorize',
    };
  if (step === 'authorize' && last.detail?.startsWith(REDIRECT_MISMATCH)) {
    return {
      kind: 'redirect_uri_mismatch',
      message:
        `redirect URI mismatch: the client asked for ${last.detail.slice(REDIRECT_MISMATCH.length + 2)}; it must ` +
        'use a redirect URI it registered (`latchkey client show` lists them)',
    };
  }
  if ((step === 'authorize' || isToken(last)) && outcome === 'invalid_target') {
    return {
      kind: 'resource_not_registered',
      message:
        `resource not registered: ${last.resource ?? 'the resource asked for'} is not a resource server here ` +
        '(add it with `latchkey resource add URL`, or fix the URL the MCP server advertises)',
    };
  }
  if (step === 'authorize' && outcome !== 'ok')
    return { kind: 'authorize_refused', message: `authorization refused: ${outcome}${said(last)}` };
  if (
    step === 'authorize' ||
    (step === 'sign_in' && outcome === 'ok') ||
    (step === 'consent' && outcome === 'given')
  )
    return {
      kind: 'stopped_at_sign_in',
      message: 'stopped at sign-in: the person did not finish signing in or approving',
    };
  if (step === 'sign_in')
    return { kind: 'sign_in_failed', message: `sign-in failed (${outcome}): the person could not sign in` };
  if (step === 'consent')
    return { kind: 'consent_denied', message: 'consent denied: the person declined this client' };
  if (step === 'code_issued') {
    return {
      kind: 'code_not_redeemed',
      message:
        `code issued but never redeemed: the client got a code at ${time(last.at)} and never called /token with ` +
        'it (can it reach the token endpoint? did its redirect reach it?)',
    };
  }
  if (isToken(last) && outcome !== 'ok')
    return { kind: 'token_refused', message: `${step} refused: ${outcome}${said(last)}` };
  if (step === 'introspection') {
    return {
      kind: 'introspection_inactive',
      message: `${last.resource ?? 'a resource server'} was told the token is inactive${said(last)}`,
    };
  }
  return { kind: 'ok', message: `no failure seen: the last step (${step}) succeeded` };
}
