// What a new password must be, wherever one is chosen (the CLI, the set-password and change-password pages).
// Length is the rule (NIST SP 800-63B §5.1.1.2: at least 8 characters, no composition rules); the upper bound only
// keeps hashing cheap for absurd input.

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 1000;

/** Why a new password cannot be used, in words for a person; undefined when it can. */
export function newPasswordProblem(password: string): string | undefined {
  const length = [...password].length;
  if (length === 0) return 'the password is empty';
  if (length < MIN_PASSWORD_LENGTH)
    return `the password must be at least ${MIN_PASSWORD_LENGTH} characters long`;
  if (length > MAX_PASSWORD_LENGTH)
    return `the password must be at most ${MAX_PASSWORD_LENGTH} characters long`;
  return undefined;
}
