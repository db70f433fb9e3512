// `latchkey user invite|reset-password|disable|enable|delete`: a person's account over its life. Invitations and
// resets print a one-time link where the person sets their own password, so the operator never knows it; the link
// is stored only as a hash. Disable and delete end the person's sessions and grants in the same transaction, which
// NOTIFYs every running instance, so /introspect answers `active: false` at once (README: Accounts).
// Each command returns its fields; the CLI prints them as `name: value` lines or, with --json, as one object.
import type { PasswordLinkPurpose } from '../store/accounts.ts';
import type { Stores } from '../store/index.ts';
import { isValidEmail, normalizeEmail } from '../store/users.ts';
import {
  CliError,
  type Command,
  type CommandContext,
  fieldsResult,
  stringOption,
  UsageError,
} from './command.ts';
import { formatTime } from './table.ts';

type User = NonNullable<Awaited<ReturnType<Stores['users']['findByEmail']>>>;

/** What a command did, as plain fields: `name: value` lines, in order. */
type CommandFields = Record<string, string>;

function emailArgument(raw: string | undefined): string {
  const email = normalizeEmail(raw ?? '');
  if (!isValidEmail(email)) throw new UsageError(`"${raw}" is not an email address`);
  return email;
}

async function existingUser(stores: Stores, email: string): Promise<User> {
  const user = await stores.users.findByEmail(email);
  if (!user) throw new CliError(`no user ${email}`);
  return user;
}

/** The link's result: the page on this issuer that takes the one-time secret. */
async function passwordLink(
  ctx: CommandContext,
  stores: Stores,
  user: User,
  purpose: PasswordLinkPurpose,
): Promise<CommandFields> {
  if (user.disabled) {
    throw new CliError(`${user.email} is disabled: run 'latchkey user enable ${user.email}' first`);
  }
  const { token, expiresAt } = await stores.accounts.createPasswordLink(
    user.id,
    purpose,
    ctx.config.passwordLinkTtl,
    new Date(),
  );
  // The server's own issuer, recorded in the database at its start: this command's environment may differ.
  const { issuer } = await ctx.issuer();
  const link = new URL(`${issuer}/set-password`);
  link.searchParams.set('token', token);
  return { user: user.email, link: link.href, expires: formatTime(expiresAt) };
}

const LINK_NOTE =
  'Send the link to the person yourself; it works once, until it expires, and any earlier link stops working.';

export const userInviteCommand: Command = {
  name: ['user', 'invite'],
  summary: 'Invite a person: print a one-time link where they set their own password',
  description:
    'Creates the user without a password when there is none yet. The link works once, for PASSWORD_LINK_TTL;\n' +
    'inviting again replaces an unused link. A user who already has a password gets `user reset-password`.',
  args: [{ name: 'EMAIL', description: 'the email address the person will sign in with' }],
  options: { name: { type: 'string', value: 'NAME', description: 'the name shown to the user' } },
  async run(ctx, args) {
    const email = emailArgument(args.positionals[0]);
    const name = stringOption(args, 'name')?.trim() || undefined;
    const stores = await ctx.stores();
    let user = await stores.users.findByEmail(email);
    if (user?.passwordHash) {
      throw new CliError(`${email} already has a password: use 'latchkey user reset-password ${email}'`);
    }
    user ??= await stores.users.create({ email, name });
    return fieldsResult(await passwordLink(ctx, stores, user, 'invite'), [LINK_NOTE]);
  },
};

export const userResetPasswordCommand: Command = {
  name: ['user', 'reset-password'],
  summary: 'Print a one-time link where a user sets a new password',
  description: "Using the link ends the user's sessions everywhere; the old password stops working.",
  args: [{ name: 'EMAIL', description: "the user's email address" }],
  async run(ctx, args) {
    const stores = await ctx.stores();
    const user = await existingUser(stores, emailArgument(args.positionals[0]));
    return fieldsResult(await passwordLink(ctx, stores, user, 'reset'), [LINK_NOTE]);
  },
};

export const userDisableCommand: Command = {
  name: ['user', 'disable'],
  summary: 'Stop a user signing in, and end their sessions and grants at once',
  description: 'Their apps must be approved again after `user enable`.',
  args: [{ name: 'EMAIL', description: "the user's email address" }],
  async run(ctx, args) {
    const email = emailArgument(args.positionals[0]);
    const user = await (await ctx.stores()).accounts.disable(email, new Date());
    if (!user) throw new CliError(`no user ${email}`);
    return fieldsResult({ user: user.email, status: 'disabled' });
  },
};

export const userEnableCommand: Command = {
  name: ['user', 'enable'],
  summary: 'Let a disabled user sign in again',
  args: [{ name: 'EMAIL', description: "the user's email address" }],
  async run(ctx, args) {
    const email = emailArgument(args.positionals[0]);
    const user = await (await ctx.stores()).accounts.enable(email);
    if (!user) throw new CliError(`no user ${email}`);
    return fieldsResult({ user: user.email, status: 'enabled' });
  },
};

export const userDeleteCommand: Command = {
  name: ['user', 'delete'],
  summary: 'Delete a user and everything of theirs (introspection sees it at once)',
  args: [{ name: 'EMAIL', description: "the user's email address" }],
  async run(ctx, args) {
    const email = emailArgument(args.positionals[0]);
    const user = await (await ctx.stores()).accounts.delete(email);
    if (!user) throw new CliError(`no user ${email}`);
    return fieldsResult({ user: user.email, status: 'deleted' });
  },
};

export const accountCommands: readonly Command[] = [
  userInviteCommand,
  userResetPasswordCommand,
  userDisableCommand,
  userEnableCommand,
  userDeleteCommand,
];
