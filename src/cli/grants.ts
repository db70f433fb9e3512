// `latchkey grant list|revoke`: live authorizations (one per approved sign-in of a client, with its tokens). The list
// names each grant's client by its client_id as well as its name: names are chosen by the clients themselves and
// several clients may share one.
import { CliError, type Command, doneResult, stringOption } from './command.ts';
import { formatTime, isoTime, listResult } from './table.ts';

export const grantListCommand: Command = {
  name: ['grant', 'list'],
  summary: 'List live grants, with the client_id of each grant',
  options: {
    user: { type: 'string', value: 'EMAIL', description: "only this user's grants" },
    client: { type: 'string', value: 'CLIENT_ID', description: "only this client's grants" },
  },
  async run(ctx, args) {
    const stores = await ctx.stores();
    const email = stringOption(args, 'user');
    const clientId = stringOption(args, 'client');
    const filter: { userId?: string; clientId?: string } = {};
    if (email !== undefined) {
      const user = await stores.users.findByEmail(email);
      if (!user) throw new CliError(`no user ${email}`);
      filter.userId = user.id;
    }
    if (clientId !== undefined) {
      const client = await stores.clients.findByClientId(clientId);
      if (!client) throw new CliError(`no client ${clientId}`);
      filter.clientId = client.id;
    }
    const grants = (await stores.grants.listGrants(filter)).map((g) => ({
      id: g.id,
      // A client acting for itself (client_credentials) has no user.
      user: g.user?.email ?? null,
      client_id: g.client.clientId,
      client_name: g.client.name,
      resource: g.resourceServer.uri,
      scopes: g.scopes,
      created_at: isoTime(g.createdAt),
    }));
    return listResult(
      grants,
      [
        ['GRANT', (g) => g.id],
        ['USER', (g) => g.user ?? '(the client itself)'],
        ['CLIENT_ID', (g) => g.client_id],
        ['CLIENT', (g) => g.client_name],
        ['RESOURCE', (g) => g.resource],
        ['SCOPE', (g) => g.scopes.join(' ')],
        ['CREATED', (g) => formatTime(new Date(g.created_at!))],
      ],
      'no grants',
    );
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
    return doneResult(`revoked grant ${id}`, { revoked: true, grant: id });
  },
};

export const grantCommands: readonly Command[] = [grantListCommand, grantRevokeCommand];
