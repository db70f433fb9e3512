// `latchkey resource add|list|rotate-secret|delete`: MCP resource servers. The URI is the audience of tokens minted
// for it (RFC 8707); the printed client id and secret are what it presents to /introspect (RFC 7662 §2.1).
import { hashSecret, randomToken } from '../lib/crypto.ts';
import { normalizeResource } from '../oauth/resources.ts';
import { CliError, type Command, println, stringOption, UsageError } from './command.ts';
import { formatTable, formatTime } from './table.ts';

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
    await store.create({
      uri,
      name: stringOption(args, 'name')?.trim() || uri,
      clientId,
      secretHash: hashSecret(secret),
    });
    println(ctx.io.stdout, `resource: ${uri}`);
    println(ctx.io.stdout, `introspection_endpoint: ${ctx.config.issuer}/introspect`);
    println(ctx.io.stdout, `client_id: ${clientId}`);
    println(ctx.io.stdout, `client_secret: ${secret}`);
    println(ctx.io.stderr, 'The secret is shown only now; store it safely.');
  },
};

export const resourceListCommand: Command = {
  name: ['resource', 'list'],
  summary: 'List resource servers',
  async run(ctx) {
    const all = await (await ctx.stores()).resourceServers.list();
    if (all.length === 0) {
      println(ctx.io.stdout, 'no resource servers');
      return;
    }
    println(
      ctx.io.stdout,
      formatTable(
        ['URI', 'NAME', 'CLIENT_ID', 'CREATED'],
        all.map((r) => [r.uri, r.name, r.clientId, formatTime(r.createdAt)]),
      ),
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
    println(ctx.io.stdout, `client_id: ${rs.clientId}`);
    println(ctx.io.stdout, `client_secret: ${secret}`);
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
    println(ctx.io.stdout, `deleted resource server ${uri}`);
  },
};

export const resourceCommands: readonly Command[] = [
  resourceAddCommand,
  resourceListCommand,
  resourceRotateCommand,
  resourceDeleteCommand,
];
