// Ways a person proves who they are. Each method is one implementation of `SignInMethod`; the sign-in page shows
// every configured method and the login routes dispatch to them, then start the one kind of session Latchkey has.
// Two shapes exist:
// - `form`: the page carries the method's fields (the password form); POST /login runs `finish` on them.
// - `redirect`: the page carries a button; POST /login/upstream/:id runs `begin`, which sends the browser to
//   another site (state bound to this browser through the pre-session cookie), and that site sends it back to
//   GET /login/upstream/:id/callback, which runs `finish`.
// A method reports facts; the routes decide status, page and text, so every method answers the same way.

/** The route's view of one request to a method: only what a method may read, never the whole request. */
export interface SignInInput {
  /** A submitted form field (POST /login) or a query parameter (a callback); absent or repeated → undefined. */
  param(name: string): string | undefined;
  /** The client address (after TRUST_PROXY), for per-address limits. */
  ip: string;
  /** The pre-session secret this browser holds in its HttpOnly cookie, to bind a started flow to the browser. */
  browserSecret: string | undefined;
  /** The return_to the form carried, already made safe by the route ('/' on a callback, which carries none). */
  returnTo: string;
  /** The request's logger: reasons go to logs, never to the page. */
  log: SignInLog;
}

export interface SignInLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What finishing a sign-in found out. */
export type SignInOutcome = SignInFact & {
  /** Where the person was going, when the method kept it across a redirect (a callback carries none). */
  returnTo?: string;
};

export type SignInFact =
  /** The person proved who they are; `upstreamLoginId` when through an upstream provider (kept on the session). */
  | { kind: 'signed_in'; userId: string; upstreamLoginId?: string }
  /** Something the method needs was not sent (an empty field, a callback without its parameters). */
  | { kind: 'incomplete' }
  /**
   * The proof did not hold, or names no account: the two are never told apart on the page. `userId`: the account
   * the proof named, when there is one (for the audit trail only).
   */
  | { kind: 'invalid'; userId?: string }
  /** The proof held, but the account is disabled. */
  | { kind: 'disabled'; userId?: string }
  /**
   * Too many attempts: `limit` says which counter ran out (`account`: this account from this address; `address`:
   * this address across accounts), `until` when the window ends.
   */
  | { kind: 'throttled'; limit: 'account' | 'address'; until: Date }
  /**
   * A redirect method's specific refusal (spec federation §3.3): the status and a fixed text of the method's own, never
   * text from the other site; shown on the sign-in page, or on the error page when the flow itself is unusable.
   */
  | { kind: 'refused'; status: number; message: string; page: 'login' | 'error' };

/** What beginning a redirect-style sign-in found out. */
export type BeginOutcome =
  /** Send the browser here (303). */
  | { kind: 'redirect'; location: string }
  | { kind: 'throttled'; limit: 'account' | 'address'; until: Date }
  /** The other site cannot be used right now (its metadata could not be fetched, say). */
  | { kind: 'unavailable' };

interface MethodBase {
  /** `^[a-z0-9][a-z0-9-]{0,31}$`, unique; part of the method's URLs. */
  readonly id: string;
  /** The method's name for people ("Password", "Plane"). */
  readonly label: string;
}

export interface FormSignInMethod extends MethodBase {
  readonly kind: 'form';
  /** The template (in the templates folder, overridable like any other) with the method's fields. */
  readonly template: string;
  /** The submitted values the form shows again after a failed attempt (never a secret). */
  formValues(input: Pick<SignInInput, 'param'>): Record<string, string>;
  finish(input: SignInInput): Promise<SignInOutcome>;
}

export interface RedirectSignInMethod extends MethodBase {
  readonly kind: 'redirect';
  /** The button's text on the sign-in page. */
  readonly buttonLabel: string;
  /** Origins `begin` may redirect to: the page's CSP form-action must allow them (CSP3 §6.3.1). */
  formTargets(): readonly string[];
  begin(input: SignInInput): Promise<BeginOutcome>;
  finish(input: SignInInput): Promise<SignInOutcome>;
}

export type SignInMethod = FormSignInMethod | RedirectSignInMethod;
