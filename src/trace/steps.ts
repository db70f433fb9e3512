// What one step of a client's trace holds (README: Client traces), and how its text is kept short and harmless:
// never a token, code, secret, email or a URL's query string (a redirect URI itself is registered metadata).
import { shorten } from '../lib/text.ts';

export type TraceStepName =
  | 'authorize'
  | 'registration'
  | 'cimd_fetch'
  | 'sign_in'
  | 'consent'
  | 'code_issued'
  | 'token'
  | 'refresh'
  | 'introspection';

export interface TraceStep {
  /** The public client_id (a CIMD client's is its document URL). */
  clientId: string;
  step: TraceStepName;
  /** `ok`, an OAuth error code (RFC 6749 §5.2), or a word such as `denied`, `refused`, `inactive`. */
  outcome: string;
  detail?: string | undefined;
  /** The resource (URI) the step concerned: the one asked for, or the resource server that introspected. */
  resource?: string | undefined;
}

/** A step as queued and stored: when it happened and how many identical steps in a row it stands for. */
export interface RecordedStep extends TraceStep {
  at: Date;
  repeat: number;
}

// Texts detail strings start with, so the diagnosis (src/trace/diagnosis.ts) recognises them.
export const REDIRECT_MISMATCH = 'redirect_uri not registered';
export const REFRESH_REPLAY = 'refresh token was already used';

export const MAX_DETAIL = 200;
export const MAX_ID = 500;
const MAX_OUTCOME = 64;

/**
 * Text for a trace row: URLs lose their query and fragment, anything shaped like an email address is replaced,
 * control characters go, and the whole is capped.
 */
export function traceText(text: string, max = MAX_DETAIL): string {
  const cleaned = text
    // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point.
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s?#]*)[?#]\S*/gi, '$1')
    .replace(/[^\s@/:?#]+@[^\s@/]+\.[^\s@/]+/g, '(email)');
  // At most `max` characters with the ellipsis, never half of a surrogate pair.
  return cleaned.length > max ? shorten(cleaned, max - 1) : cleaned;
}

/** The step as it may be stored: every text field cleaned and capped. */
export function cleanStep(s: TraceStep, at: Date): RecordedStep {
  return {
    clientId: s.clientId.slice(0, MAX_ID),
    step: s.step,
    outcome: traceText(s.outcome, MAX_OUTCOME),
    detail: s.detail === undefined ? undefined : traceText(s.detail),
    resource: s.resource === undefined ? undefined : traceText(s.resource, MAX_ID),
    at,
    repeat: 1,
  };
}
