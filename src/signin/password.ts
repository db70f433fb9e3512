// The password form: an email and a password checked against the argon2id hash in `users`.
// Throttling (README "Security notes"), in the database so every instance shares the counts, never reveals whether an
// email exists (unknown emails are counted and verified like known ones) and never locks the owner out:
// - per (account, client address): past LOGIN_MAX_ATTEMPTS_PER_ACCOUNT attempts, 429 until the window ends;
// - per client address, across accounts: past LOGIN_MAX_ATTEMPTS_PER_ADDRESS, 429 until the window ends;
// - per account, from every address: past LOGIN_MAX_ATTEMPTS_PER_ACCOUNT, each attempt waits before it is checked,
//   the wait doubling with each further attempt up to LOGIN_MAX_DELAY. It slows guessing spread over many addresses
//   but refuses nobody, so an attacker cannot keep the owner out by failing on purpose.
import { type Clock, sleep } from '../lib/clock.ts';
import { verifyPassword } from '../lib/crypto.ts';
import type { RateLimitStore } from '../store/rate-limits.ts';
import { normalizeEmail, type UserStore } from '../store/users.ts';
import type { FormSignInMethod, SignInInput, SignInOutcome } from './method.ts';

export interface PasswordSignInDeps {
  users: Pick<UserStore, 'findByEmail'>;
  rateLimits: Pick<RateLimitStore, 'hit' | 'reset'>;
  /** Also times the account-wide wait, so tests move it instead of waiting. */
  clock: Clock;
  /**
   * LOGIN_MAX_ATTEMPTS_PER_ACCOUNT, LOGIN_MAX_ATTEMPTS_PER_ADDRESS, LOGIN_THROTTLE_WINDOW (seconds) and
   * LOGIN_MAX_DELAY (seconds; 10 when not given).
   */
  limits: { perAccount: number; perAddress: number; windowSeconds: number; maxDelaySeconds?: number };
  /** The argon2id check; tests watch it to see that an unknown email costs one verification too. */
  verifyPassword?: typeof verifyPassword;
}

// Counter keys (the store keeps only their hashes, so the table does not list the emails people tried).
const pairKey = (email: string, ip: string) => `login-pair:${JSON.stringify([email, ip])}`;
const addressKey = (ip: string) => `login-address:${ip}`;
const accountKey = (email: string) => `login-account:${email}`;

/** The wait for the n-th attempt on an account within the window: 1, 2, 4… seconds past the limit, capped. */
export function accountDelay(attempts: number, limit: number, maxDelaySeconds: number): number {
  if (attempts <= limit) return 0;
  return Math.min(maxDelaySeconds, 2 ** Math.min(attempts - limit - 1, 30));
}

export function passwordSignIn(deps: PasswordSignInDeps): FormSignInMethod {
  const { users, rateLimits, clock, limits } = deps;
  const maxDelay = limits.maxDelaySeconds ?? 10;
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

      // Every counter counts every attempt, known email or not, before any check: a throttled answer says nothing,
      // and attempts sent at once cannot slip past a limit.
      const now = clock.now();
      const window = limits.windowSeconds;
      const [pair, address, account] = await Promise.all([
        rateLimits.hit(pairKey(email, input.ip), limits.perAccount, window, now),
        rateLimits.hit(addressKey(input.ip), limits.perAddress, window, now),
        rateLimits.hit(accountKey(email), limits.perAccount, window, now),
      ]);
      if (!pair.allowed || !address.allowed) {
        const until = Math.max(
          pair.allowed ? 0 : pair.resetAt.getTime(),
          address.allowed ? 0 : address.resetAt.getTime(),
        );
        return { kind: 'throttled', limit: pair.allowed ? 'address' : 'account', until: new Date(until) };
      }
      const delay = accountDelay(account.hits, limits.perAccount, maxDelay);
      if (delay > 0) {
        input.log.warn({ delaySeconds: delay }, 'sign-in slowed: many attempts on this account');
        await sleep(clock, delay);
      }

      const user = await users.findByEmail(email);
      // verifyPassword runs argon2id against a fixed dummy hash when there is no user: the same cost either way.
      const ok = await verify(password, user?.passwordHash);
      if (!user) return { kind: 'invalid' };
      if (!ok) return { kind: 'invalid', userId: user.id };
      if (user.disabled) return { kind: 'disabled', userId: user.id };
      // Only this address's count starts again: the owner signing in does not lift the slowdown others caused.
      await rateLimits.reset(pairKey(email, input.ip));
      return { kind: 'signed_in', userId: user.id };
    },
  };
}
