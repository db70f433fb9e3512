// `latchkey user add|list`: the people who sign in on Latchkey's pages. Passwords are hashed (argon2id) by the
// user store; the CLI only reads them and hands them on.
import { EmailTakenError, isValidEmail, normalizeEmail } from '../store/users.ts';
import { booleanOption, CliError, type Command, doneResult, stringOption, UsageError } from './command.ts';
import { checkNewPassword, promptNewPassword, readPasswordFromStdin } from './password.ts';
import { formatTime, isoTime, listResult } from './table.ts';

export const userAddCommand: Command = {
  name: ['user', 'add'],
  summary: 'Add a user who signs in with a password',
  description:
    'The password is read from standard input with --password-stdin (one trailing newline is dropped);\n' +
    'otherwise it is asked for twice at the terminal, without echo. It must be at least 8 characters.',
  args: [{ name: 'EMAIL', description: 'the email address the user signs in with' }],
  options: {
    name: { type: 'string', value: 'NAME', description: 'the name shown to the user' },
    'password-stdin': { type: 'boolean', description: 'read the password from standard input' },
  },
  async run(ctx, args) {
    const email = normalizeEmail(args.positionals[0] ?? '');
    if (!isValidEmail(email)) throw new UsageError(`"${args.positionals[0]}" is not an email address`);
    const name = stringOption(args, 'name')?.trim() || undefined;

    let password: string | undefined;
    if (booleanOption(args, 'password-stdin')) {
      password = await readPasswordFromStdin(ctx.io.stdin);
      checkNewPassword(password);
    } else if (!ctx.io.stdin.isTTY) {
      throw new UsageError(
        'no terminal to ask for the password: give --password-stdin and write it to standard input',
      );
    }

    const { users } = await ctx.stores();
    // Checked before asking for a password, so nobody types one for nothing; create() checks again atomically.
    if (await users.findByEmail(email)) throw new CliError(new EmailTakenError(email).message);
    password ??= await promptNewPassword(ctx.io.stdin, ctx.io.stderr);

    try {
      const user = await users.create({ email, name, password });
      return doneResult(`added user ${user.email} (id ${user.id})`, {
        id: user.id,
        email: user.email,
        name: user.name,
      });
    } catch (err) {
      if (err instanceof EmailTakenError) throw new CliError(err.message);
      throw err;
    }
  },
};

export const userListCommand: Command = {
  name: ['user', 'list'],
  summary: 'List users',
  async run(ctx) {
    const users = (await (await ctx.stores()).users.list()).map((u) => ({
      id: u.id,
      email: u.email,
      name: u.name,
      disabled: u.disabled,
      created_at: isoTime(u.createdAt),
    }));
    return listResult(
      users,
      [
        ['EMAIL', (u) => u.email],
        ['NAME', (u) => u.name ?? '-'],
        ['DISABLED', (u) => (u.disabled ? 'yes' : 'no')],
        ['CREATED', (u) => formatTime(new Date(u.created_at!))],
      ],
      'no users',
    );
  },
};

export const userCommands: readonly Command[] = [userAddCommand, userListCommand];
