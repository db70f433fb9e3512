// The configured sign-in methods, built once at start and checked there: the sign-in page shows them in this
// order, and the login routes find them here by id.
import type { Config } from '../config.ts';
import type { Clock } from '../lib/clock.ts';
import type { Stores } from '../store/index.ts';
import { upstreamSignIn } from '../upstream/flow.ts';
import type { Upstream } from '../upstream/index.ts';
import type { FormSignInMethod, RedirectSignInMethod, SignInMethod } from './method.ts';
import { passwordSignIn } from './password.ts';

export type * from './method.ts';

/** What building the methods may draw on; each method takes only the parts it uses. */
export interface SignInDeps {
  config: Config;
  stores: Stores;
  clock: Clock;
  upstream: Upstream;
}

/** Builds the methods an app offers, in page order. */
export type SignInMethodsFactory = (deps: SignInDeps) => readonly SignInMethod[];

/** The configuration's methods: the password form (unless PASSWORD_SIGN_IN=false), then one per upstream provider. */
export const defaultSignInMethods: SignInMethodsFactory = ({ config, stores, clock, upstream }) => [
  ...(config.passwordSignIn
    ? [
        passwordSignIn({
          users: stores.users,
          rateLimits: stores.rateLimits,
          clock,
          limits: {
            perAccount: config.loginMaxAttemptsPerAccount,
            perAddress: config.loginMaxAttemptsPerAddress,
            windowSeconds: config.loginThrottleWindow,
            maxDelaySeconds: config.loginMaxDelay,
          },
        }),
      ]
    : []),
  ...upstream.providers.map((provider) =>
    upstreamSignIn(provider, {
      upstream,
      stores,
      clock,
      limits: { perAddress: config.loginMaxAttemptsPerAddress, windowSeconds: config.loginThrottleWindow },
    }),
  ),
];

export interface SignInMethods {
  readonly all: readonly SignInMethod[];
  /** The form that POST /login finishes, when one is configured. */
  readonly form: FormSignInMethod | undefined;
  readonly redirects: readonly RedirectSignInMethod[];
  redirect(id: string): RedirectSignInMethod | undefined;
  /** Every origin a redirect method may send the browser to, for the sign-in page's CSP form-action. */
  formTargets(): string[];
}

const ID = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** Checks the list (ids well-formed and unique, at most one form) and indexes it; throws naming the problem. */
export function signInMethods(all: readonly SignInMethod[]): SignInMethods {
  const seen = new Set<string>();
  for (const m of all) {
    if (!ID.test(m.id)) throw new Error(`sign-in method id "${m.id}" must match ${ID.source}`);
    if (seen.has(m.id)) throw new Error(`sign-in method id "${m.id}" is used twice`);
    seen.add(m.id);
  }
  const forms = all.filter((m): m is FormSignInMethod => m.kind === 'form');
  // POST /login carries no method id: one form at most keeps that unambiguous.
  if (forms.length > 1)
    throw new Error(`only one form sign-in method may be configured, got ${forms.length}`);
  const redirects = all.filter((m): m is RedirectSignInMethod => m.kind === 'redirect');
  const byId = new Map(redirects.map((m) => [m.id, m]));
  return {
    all,
    form: forms[0],
    redirects,
    redirect: (id) => byId.get(id),
    formTargets: () => [...new Set(redirects.flatMap((m) => m.formTargets()))],
  };
}
