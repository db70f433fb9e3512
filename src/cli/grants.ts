// `latchkey grant list|revoke`: live authorizations (one per approved sign-in of a client, with its tokens).
import { grantStore } from '../store/grants.ts';
import { userStore } from '../store/users.ts';
import { CliError, type Command, println, stringOption } from './command.ts';
import { formatTable, formatTime } from './table.ts';

export const grantListCommand: Command = {
  name: ['grant', 'list'],
  summary: 'List live grants',
  options: { user: { type: 'string', value: 'EMAIL', description: "only this user's grants" } },
  async run(ctx, args) {
    const { db } = await ctx.database();
    const email = stringOption(args, 'user');
    let userId: string | undefined;
    if (email) {
      const user = await userStore(db.prisma).findByEmail(email);
      if (!user) throw new CliError(`no user ${email}`);
      userId = user.id;
    }
    const grants = await grantStore(db.prisma).listGrants(userId ? { userId } : {});
    if (grants.length === 0) {
      println(ctx.io.stdout, 'no grants');
      return;
    }
    const rows = grants.map((g) => [
      g.id,
      g.user.email,
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
  args: [{ name: 'GRANT', description: 'the grant id from `grant list`' }],
  async run(ctx, args) {
    const { db } = await ctx.database();
    const id = args.positionals[0]!;
    const exists = await db.prisma.grant.findUnique({ where: { id } }).catch(() => null);
    if (!exists) throw new CliError(`no grant ${id}`);
    await grantStore(db.prisma).revokeGrant(id, 'operator', new Date());
    println(ctx.io.stdout, `revoked grant ${id}`);
  },
};

export const grantCommands: readonly Command[] = [grantListCommand, grantRevokeCommand];
