// The password form: an email and a password checked against the argon2id hash in `users`.
// Failed attempts are throttled per account and per client address (in the database, so every instance shares
// the count); the outcome never reveals whether an email exists, and an unknown email costs the same argon2id
// verification as a known one.
import type { Clock } from '../lib/clock.ts';
import { hashSecret, verifyPassword } from '../lib/crypto.ts';
import type { RateLimitStore } from '../store/rate-limits.ts';
import { normalizeEmail, type UserStore } from '../store/users.ts';
import type { FormSignInMethod, SignInInput, SignInOutcome } from './method.ts';

export interface PasswordSignInDeps {
  users: Pick<UserStore, 'findByEmail'>;
  rateLimits: Pick<RateLimitStore, 'hit' | 'reset'>;
  clock: Clock;
  /** LOGIN_MAX_ATTEMPTS_PER_ACCOUNT, LOGIN_MAX_ATTEMPTS_PER_ADDRESS and LOGIN_THROTTLE_WINDOW (seconds). */
  limits: { perAccount: number; perAddress: number; windowSeconds: number };
  /** The argon2id check; tests watch it to see that an unknown email costs one verification too. */
  verifyPassword?: typeof verifyPassword;
}

/** The account counter's key: a hash, so the table does not list the emails people tried. */
function accountKey(email: string): string {
  return `login:account:${hashSecret(email)}`;
}

export function passwordSignIn(deps: PasswordSignInDeps): FormSignInMethod {
  const { users, rateLimits, clock, limits } = deps;
  const verify = deps.verifyPassword ?? verifyPassword;
  const emailOf = (input: Pick<SignInInput, 'param'>) => normalizeEmail(input.param('email') ?? '');

  return {
    id: 'password',
    kind: 'form',
    label: 'Password',
    template: 'signin-password',

    formValues: (input) => ({ email: emailOf(input) }),

    async finish(input): Promise<SignInOutcome> {
      const email = emailOf(input);
      const password = input.param('password') ?? '';
      if (!email || !password) return { kind: 'incomplete' };

      // Both counters count every attempt, known email or not, so a throttled answer says nothing either.
      const now = clock.now();
      const key = accountKey(email);
      const [perAccount, perAddress] = await Promise.all([
        rateLimits.hit(key, limits.perAccount, limits.windowSeconds, now),
        rateLimits.hit(`login:address:${input.ip}`, limits.perAddress, limits.windowSeconds, now),
      ]);
      if (!perAccount.allowed || !perAddress.allowed) {
        const until = Math.max(
          perAccount.allowed ? 0 : perAccount.resetAt.getTime(),
          perAddress.allowed ? 0 : perAddress.resetAt.getTime(),
        );
        return {
          kind: 'throttled',
          limit: perAccount.allowed ? 'address' : 'account',
          until: new Date(until),
        };
      }

      const user = await users.findByEmail(email);
      // verifyPassword runs argon2id against a fixed dummy hash when there is no user: the same cost either way.
      const ok = await verify(password, user?.passwordHash);
      if (!user || !ok) return { kind: 'invalid' };
      if (user.disabled) return { kind: 'disabled' };
      await rateLimits.reset(key);
      return { kind: 'signed_in', userId: user.id };
    },
  };
}
