// `latchkey resource add|list|rotate-secret|delete`: MCP resource servers. The URI is the audience of tokens minted
// for it (RFC 8707); the printed client id and secret are what it presents to /introspect (RFC 7662 §2.1).
import { hashSecret, randomToken } from '../lib/crypto.ts';
import { normalizeResource } from '../oauth/resources.ts';
import { CliError, type Command, doneResult, fieldsResult, stringOption, UsageError } from './command.ts';
import { formatTime, isoTime, listResult } from './table.ts';

function canonical(uri: string): string {
  const c = normalizeResource(uri);
  if (!c) throw new UsageError(`"${uri}" is not an absolute http(s) URI without a fragment`);
  return c;
}

export const resourceAddCommand: Command = {
  name: ['resource', 'add'],
  summary: 'Register an MCP server (prints its /introspect credentials once)',
  args: [
    { name: 'URI', description: 'the canonical URL of the MCP server, e.g. https://mcp.example.com/mcp' },
  ],
  options: { name: { type: 'string', value: 'NAME', description: 'the name shown on the consent page' } },
  async run(ctx, args) {
    const uri = canonical(args.positionals[0]!);
    const store = (await ctx.stores()).resourceServers;
    if (await store.findByUri(uri)) throw new CliError(`a resource server ${uri} already exists`);
    const clientId = `rs_${randomToken(12)}`;
    const secret = randomToken(32);
    const name = stringOption(args, 'name')?.trim() || uri;
    await store.create({ uri, name, clientId, secretHash: hashSecret(secret) });
    // The server's own issuer, recorded in the database at its start: this command's environment may differ.
    const { issuer, from } = await ctx.issuer();
    const notes = ['The secret is shown only now; store it safely.'];
    if (from === 'environment') {
      notes.push(
        `No server has started on this database yet: the endpoint is from this command's ISSUER (${issuer}).`,
      );
    }
    return fieldsResult(
      {
        resource: uri,
        name,
        introspection_endpoint: `${issuer}/introspect`,
        client_id: clientId,
        client_secret: secret,
      },
      notes,
    );
  },
};

export const resourceListCommand: Command = {
  name: ['resource', 'list'],
  summary: 'List resource servers',
  async run(ctx) {
    const all = (await (await ctx.stores()).resourceServers.list()).map((r) => ({
      uri: r.uri,
      name: r.name,
      client_id: r.clientId,
      created_at: isoTime(r.createdAt),
    }));
    return listResult(
      all,
      [
        ['URI', (r) => r.uri],
        ['NAME', (r) => r.name],
        ['CLIENT_ID', (r) => r.client_id],
        ['CREATED', (r) => formatTime(new Date(r.created_at!))],
      ],
      'no resource servers',
    );
  },
};

export const resourceRotateCommand: Command = {
  name: ['resource', 'rotate-secret'],
  summary: "Replace a resource server's secret (the old one stops working at once)",
  args: [{ name: 'URI', description: 'the resource server URI' }],
  async run(ctx, args) {
    const uri = canonical(args.positionals[0]!);
    const secret = randomToken(32);
    const rs = await (await ctx.stores()).resourceServers.rotateSecret(uri, hashSecret(secret), new Date());
    if (!rs) throw new CliError(`no resource server ${uri}`);
    return fieldsResult({ resource: uri, client_id: rs.clientId, client_secret: secret }, [
      'The new secret is shown only now; store it safely.',
    ]);
  },
};

export const resourceDeleteCommand: Command = {
  name: ['resource', 'delete'],
  summary: 'Delete a resource server and every grant and token bound to it',
  args: [{ name: 'URI', description: 'the resource server URI' }],
  async run(ctx, args) {
    const uri = canonical(args.positionals[0]!);
    if (!(await (await ctx.stores()).resourceServers.delete(uri)))
      throw new CliError(`no resource server ${uri}`);
    return doneResult(`deleted resource server ${uri}`, { deleted: true, resource: uri });
  },
};

export const resourceCommands: readonly Command[] = [
  resourceAddCommand,
  resourceListCommand,
  resourceRotateCommand,
  resourceDeleteCommand,
];
