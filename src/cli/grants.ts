// `latchkey grant list|revoke`: live authorizations (one per approved sign-in of a client, with its tokens).
import { CliError, type Command, println, stringOption } from './command.ts';
import { formatTable, formatTime } from './table.ts';

export const grantListCommand: Command = {
  name: ['grant', 'list'],
  summary: 'List live grants',
  options: { user: { type: 'string', value: 'EMAIL', description: "only this user's grants" } },
  async run(ctx, args) {
    const stores = await ctx.stores();
    const email = stringOption(args, 'user');
    let userId: string | undefined;
    if (email) {
      const user = await stores.users.findByEmail(email);
      if (!user) throw new CliError(`no user ${email}`);
      userId = user.id;
    }
    const grants = await stores.grants.listGrants(userId ? { userId } : {});
    if (grants.length === 0) {
      println(ctx.io.stdout, 'no grants');
      return;
    }
    const rows = grants.map((g) => [
      g.id,
      // A client acting for itself (client_credentials) has no user.
      g.user?.email ?? '(the client itself)',
      g.client.name,
      g.resourceServer.uri,
      g.scopes.join(' '),
      formatTime(g.createdAt),
    ]);
    println(ctx.io.stdout, formatTable(['GRANT', 'USER', 'CLIENT', 'RESOURCE', 'SCOPE', 'CREATED'], rows));
  },
};

export const grantRevokeCommand: Command = {
  name: ['grant', 'revoke'],
  summary: 'Revoke a grant and every token in it (introspection sees it at once)',
  description:
    "The person's remembered approval of that app goes too: its next request shows the consent page again.",
  args: [{ name: 'GRANT', description: 'the grant id from `grant list`' }],
  async run(ctx, args) {
    const id = args.positionals[0]!;
    if (
      !(await (await ctx.stores()).grants.revokeGrant(id, 'operator', new Date(), { forgetConsent: true }))
    ) {
      throw new CliError(`no grant ${id}`);
    }
    println(ctx.io.stdout, `revoked grant ${id}`);
  },
};

export const grantCommands: readonly Command[] = [grantListCommand, grantRevokeCommand];
