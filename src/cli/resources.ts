// `latchkey resource add|update|list|rotate-secret|delete`: MCP resource servers. The URI is the audience of tokens
// minted for it (RFC 8707); the printed client id and secret are what it presents to /introspect (RFC 7662 §2.1)
// and to /token for the upstream token exchange. The upstream flags say what it may receive of a person's upstream
// sign-in (spec federation §2.2); provider ids must be configured in UPSTREAM_PROVIDERS.
import type { Config } from '../config.ts';
import { hashSecret, randomToken } from '../lib/crypto.ts';
import { normalizeResource } from '../oauth/resources.ts';
import type { ResourceServerChanges } from '../store/resource-servers.ts';
import {
  booleanOption,
  CliError,
  type Command,
  doneResult,
  fieldsResult,
  listOption,
  type OptionSpec,
  type ParsedArgs,
  stringOption,
  UsageError,
} from './command.ts';
import { formatTime, isoTime, listResult } from './table.ts';

const UPSTREAM_OPTIONS: Record<string, OptionSpec> = {
  'upstream-claims': {
    type: 'boolean',
    description:
      '/introspect includes the upstream identity (email, names, Plane workspace…) of federated sign-ins',
  },
  'upstream-token': {
    type: 'string',
    multiple: true,
    value: 'PROVIDER',
    description: 'may obtain the upstream access token of this provider by token exchange (repeat for more)',
  },
  'require-upstream': {
    type: 'string',
    value: 'PROVIDER',
    description: 'authorizations for it need a sign-in through this provider',
  },
};

/** The upstream flags given, checked against the configured providers (an unknown id is an error exit). */
function upstreamChanges(config: Config, args: ParsedArgs): ResourceServerChanges {
  const known = config.upstreamProviders.map((p) => p.id);
  const check = (id: string, flag: string) => {
    if (!known.includes(id)) {
      throw new UsageError(
        `--${flag} ${id}: no such upstream provider (configured: ${known.length ? known.join(', ') : 'none'})`,
      );
    }
    return id;
  };
  const changes: ResourceServerChanges = {};
  if (booleanOption(args, 'upstream-claims')) changes.exposeUpstreamClaims = true;
  if (booleanOption(args, 'no-upstream-claims')) changes.exposeUpstreamClaims = false;
  const tokens = listOption(args, 'upstream-token');
  if (tokens.length)
    changes.upstreamTokenProviders = [...new Set(tokens.map((t) => check(t, 'upstream-token')))];
  if (booleanOption(args, 'no-upstream-token')) changes.upstreamTokenProviders = [];
  const required = stringOption(args, 'require-upstream');
  if (required !== undefined) changes.requiredUpstreamProvider = check(required, 'require-upstream');
  if (booleanOption(args, 'no-require-upstream')) changes.requiredUpstreamProvider = null;
  return changes;
}

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
  options: {
    name: { type: 'string', value: 'NAME', description: 'the name shown on the consent page' },
    ...UPSTREAM_OPTIONS,
  },
  async run(ctx, args) {
    const uri = canonical(args.positionals[0]!);
    const upstream = upstreamChanges(ctx.config, args);
    const store = (await ctx.stores()).resourceServers;
    if (await store.findByUri(uri)) throw new CliError(`a resource server ${uri} already exists`);
    const clientId = `rs_${randomToken(12)}`;
    const secret = randomToken(32);
    const name = stringOption(args, 'name')?.trim() || uri;
    await store.create({ uri, name, clientId, secretHash: hashSecret(secret), ...upstream });
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

export const resourceUpdateCommand: Command = {
  name: ['resource', 'update'],
  summary: 'Change the name or the upstream access of a resource server',
  args: [{ name: 'URI', description: 'the resource server URI' }],
  options: {
    name: { type: 'string', value: 'NAME', description: 'the name shown on the consent page' },
    ...UPSTREAM_OPTIONS,
    'no-upstream-claims': { type: 'boolean', description: 'stop including the upstream identity' },
    'no-upstream-token': { type: 'boolean', description: 'may obtain no upstream access token' },
    'no-require-upstream': { type: 'boolean', description: 'any sign-in will do' },
  },
  async run(ctx, args) {
    const uri = canonical(args.positionals[0]!);
    const changes = upstreamChanges(ctx.config, args);
    const name = stringOption(args, 'name')?.trim();
    if (name) changes.name = name;
    if (Object.keys(changes).length === 0) throw new UsageError('nothing to change');
    const rs = await (await ctx.stores()).resourceServers.update(uri, changes);
    if (!rs) throw new CliError(`no resource server ${uri}`);
    return fieldsResult({
      resource: uri,
      name: rs.name,
      upstream_claims: rs.exposeUpstreamClaims,
      upstream_token: rs.upstreamTokenProviders,
      require_upstream: rs.requiredUpstreamProvider,
    });
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
      upstream_claims: r.exposeUpstreamClaims,
      upstream_token: r.upstreamTokenProviders,
      require_upstream: r.requiredUpstreamProvider,
      created_at: isoTime(r.createdAt),
    }));
    return listResult(
      all,
      [
        ['URI', (r) => r.uri],
        ['NAME', (r) => r.name],
        ['CLIENT_ID', (r) => r.client_id],
        ['UPSTREAM', (r) => upstreamSummary(r)],
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

function upstreamSummary(r: {
  upstream_claims: boolean;
  upstream_token: readonly string[];
  require_upstream: string | null;
}): string {
  const parts = [
    ...(r.upstream_claims ? ['claims'] : []),
    ...r.upstream_token.map((p) => `token:${p}`),
    ...(r.require_upstream ? [`requires:${r.require_upstream}`] : []),
  ];
  return parts.join(',') || '-';
}

export const resourceCommands: readonly Command[] = [
  resourceAddCommand,
  resourceUpdateCommand,
  resourceListCommand,
  resourceRotateCommand,
  resourceDeleteCommand,
];
