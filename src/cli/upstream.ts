// `latchkey upstream list|link|unlink`: the upstream identity providers people sign in with (UPSTREAM_PROVIDERS),
// their exact redirect URIs (what to register at the provider), and the links between upstream accounts and users.
import { redirectUri } from '../upstream/config.ts';
import { CliError, type Command, println } from './command.ts';
import { formatTable } from './table.ts';

export const upstreamListCommand: Command = {
  name: ['upstream', 'list'],
  summary: 'List upstream providers, the redirect URI to register at each, and linked identities',
  async run(ctx) {
    const stores = await ctx.stores();
    const counts = await stores.upstream.identityCounts();
    const keys = await stores.upstream.loginKeyCounts();
    const providers = ctx.config.upstreamProviders;
    const rows = providers.map((p) => [
      p.id,
      p.type,
      p.name,
      redirectUri(ctx.config.issuer, p.id),
      String(counts.get(p.id) ?? 0),
    ]);
    // Links to providers no longer configured stay (renaming an id orphans them): show them too.
    for (const [id, n] of counts) {
      if (!providers.some((p) => p.id === id)) rows.push([id, '(not configured)', '', '', String(n)]);
    }
    if (rows.length === 0) {
      println(ctx.io.stdout, 'no upstream providers (set UPSTREAM_PROVIDERS)');
      return;
    }
    println(ctx.io.stdout, formatTable(['ID', 'TYPE', 'NAME', 'REDIRECT_URI', 'IDENTITIES'], rows));
    if (keys.length > 0) {
      // Key rotation: an old key may be removed once no live sign-in is stored under it.
      println(ctx.io.stdout);
      println(
        ctx.io.stdout,
        formatTable(
          ['PROVIDER', 'KEY_ID', 'LIVE_SIGN_INS'],
          keys.map((k) => [k.provider, k.keyId, String(k.count)]),
        ),
      );
    }
  },
};

export const upstreamLinkCommand: Command = {
  name: ['upstream', 'link'],
  summary: 'Link a user to an upstream account (for link_policy "subject")',
  args: [
    { name: 'EMAIL', description: 'the local user' },
    { name: 'PROVIDER', description: 'the provider id from UPSTREAM_PROVIDERS' },
    {
      name: 'SUBJECT',
      description: "the upstream account's subject (sub, the Plane user id, the GitHub numeric id)",
    },
  ],
  async run(ctx, args) {
    const [email, provider, subject] = args.positionals as [string, string, string];
    if (!ctx.config.upstreamProviders.some((p) => p.id === provider))
      throw new CliError(`no upstream provider "${provider}" is configured`);
    const stores = await ctx.stores();
    const user = await stores.users.findByEmail(email);
    if (!user) throw new CliError(`no user ${email}`);
    if (!(await stores.upstream.link(user.id, provider, subject, new Date()))) {
      throw new CliError(
        `${email} already has a ${provider} account linked, or that ${provider} account is linked to someone else`,
      );
    }
    println(ctx.io.stdout, `linked ${email} to ${provider} account ${subject}`);
  },
};

export const upstreamUnlinkCommand: Command = {
  name: ['upstream', 'unlink'],
  summary: "Unlink a user's upstream account: its grants are revoked and its sessions ended",
  args: [
    { name: 'EMAIL', description: 'the local user' },
    { name: 'PROVIDER', description: 'the provider id' },
  ],
  async run(ctx, args) {
    const [email, provider] = args.positionals as [string, string];
    const stores = await ctx.stores();
    const user = await stores.users.findByEmail(email);
    if (!user) throw new CliError(`no user ${email}`);
    const result = await stores.upstream.unlink(user.id, provider, new Date());
    if (!result) throw new CliError(`${email} has no ${provider} account linked`);
    println(
      ctx.io.stdout,
      `unlinked ${email} from ${provider}: ${result.grants} grant(s) revoked, ${result.sessions} session(s) ended`,
    );
  },
};

export const upstreamCommands: readonly Command[] = [
  upstreamListCommand,
  upstreamLinkCommand,
  upstreamUnlinkCommand,
];
