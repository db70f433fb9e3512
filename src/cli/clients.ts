// `latchkey client add|list|show|delete`: OAuth clients of every kind (operator-created, dynamically registered,
// CIMD documents cached from their URL). A new client's secret is printed once and stored only as a hash.
import { hashSecret, randomToken } from '../lib/crypto.ts';
import { redirectUriProblem } from '../oauth/redirect-uri.ts';
import { clientStore } from '../store/clients.ts';
import {
  booleanOption,
  CliError,
  type Command,
  listOption,
  println,
  stringOption,
  UsageError,
} from './command.ts';
import { formatTable, formatTime } from './table.ts';

export const clientAddCommand: Command = {
  name: ['client', 'add'],
  summary: 'Register a client (for apps that cannot register themselves)',
  description:
    'Public clients (the default) authenticate with PKCE alone; --confidential issues a client secret, printed\n' +
    'once, for client_secret_basic (or client_secret_post with --auth-method).',
  options: {
    name: { type: 'string', value: 'NAME', description: 'the name shown on the consent page (required)' },
    'redirect-uri': {
      type: 'string',
      multiple: true,
      value: 'URI',
      description: 'a redirect URI (repeat for more)',
    },
    confidential: { type: 'boolean', description: 'issue a client secret' },
    'auth-method': {
      type: 'string',
      value: 'METHOD',
      description: 'client_secret_basic (default for --confidential) or client_secret_post',
    },
    'no-refresh': { type: 'boolean', description: 'do not allow the refresh_token grant' },
  },
  async run(ctx, args) {
    const name = stringOption(args, 'name')?.trim();
    if (!name) throw new UsageError('--name is required');
    const redirectUris = listOption(args, 'redirect-uri');
    if (redirectUris.length === 0) throw new UsageError('at least one --redirect-uri is required');
    for (const uri of redirectUris) {
      const problem = redirectUriProblem(uri);
      if (problem) throw new UsageError(`${uri}: ${problem}`);
    }
    const confidential = booleanOption(args, 'confidential');
    const method = stringOption(args, 'auth-method') ?? (confidential ? 'client_secret_basic' : 'none');
    if (method !== 'none' && method !== 'client_secret_basic' && method !== 'client_secret_post') {
      throw new UsageError('--auth-method must be client_secret_basic or client_secret_post');
    }
    if (method !== 'none' && !confidential) throw new UsageError('--auth-method needs --confidential');

    const { db } = await ctx.database();
    const clientId = randomToken(16);
    const secret = method === 'none' ? undefined : randomToken(32);
    await clientStore(db.prisma).create({
      clientId,
      kind: 'OPERATOR',
      name,
      redirectUris,
      grantTypes: booleanOption(args, 'no-refresh')
        ? ['authorization_code']
        : ['authorization_code', 'refresh_token'],
      responseTypes: ['code'],
      tokenEndpointAuthMethod: method,
      secretHash: secret ? hashSecret(secret) : null,
    });
    println(ctx.io.stdout, `client_id: ${clientId}`);
    if (secret) {
      println(ctx.io.stdout, `client_secret: ${secret}`);
      println(ctx.io.stderr, 'The secret is shown only now; store it safely.');
    }
    println(ctx.io.stdout, `token_endpoint_auth_method: ${method}`);
  },
};

export const clientListCommand: Command = {
  name: ['client', 'list'],
  summary: 'List clients of every kind',
  options: { kind: { type: 'string', value: 'KIND', description: 'only DYNAMIC, CIMD or OPERATOR clients' } },
  async run(ctx, args) {
    const kind = stringOption(args, 'kind')?.toUpperCase();
    if (kind !== undefined && kind !== 'DYNAMIC' && kind !== 'CIMD' && kind !== 'OPERATOR') {
      throw new UsageError('--kind must be DYNAMIC, CIMD or OPERATOR');
    }
    const { db } = await ctx.database();
    const clients = await clientStore(db.prisma).list(kind);
    if (clients.length === 0) {
      println(ctx.io.stdout, 'no clients');
      return;
    }
    const rows = clients.map((c) => [
      c.clientId,
      c.kind,
      c.name,
      c.tokenEndpointAuthMethod,
      c.lastUsedAt ? formatTime(c.lastUsedAt) : 'never',
    ]);
    println(ctx.io.stdout, formatTable(['CLIENT_ID', 'KIND', 'NAME', 'AUTH', 'LAST USED'], rows));
  },
};

export const clientShowCommand: Command = {
  name: ['client', 'show'],
  summary: 'Show one client',
  args: [{ name: 'CLIENT_ID', description: 'the client_id' }],
  async run(ctx, args) {
    const { db } = await ctx.database();
    const c = await clientStore(db.prisma).findByClientId(args.positionals[0]!);
    if (!c) throw new CliError(`no client ${args.positionals[0]}`);
    const lines: [string, string][] = [
      ['client_id', c.clientId],
      ['kind', c.kind],
      ['name', c.name],
      ['redirect_uris', c.redirectUris.join(' ')],
      ['grant_types', c.grantTypes.join(' ')],
      ['token_endpoint_auth_method', c.tokenEndpointAuthMethod],
      ['has_secret', c.secretHash ? 'yes' : 'no'],
      ['created', formatTime(c.createdAt)],
      ['last_used', c.lastUsedAt ? formatTime(c.lastUsedAt) : 'never'],
      ...(c.kind === 'CIMD' && c.freshUntil
        ? ([['document_fresh_until', formatTime(c.freshUntil)]] as [string, string][])
        : []),
    ];
    for (const [k, v] of lines) println(ctx.io.stdout, `${k}: ${v}`);
  },
};

export const clientDeleteCommand: Command = {
  name: ['client', 'delete'],
  summary: 'Delete a client and every grant and token issued to it',
  args: [{ name: 'CLIENT_ID', description: 'the client_id' }],
  async run(ctx, args) {
    const { db } = await ctx.database();
    if (!(await clientStore(db.prisma).delete(args.positionals[0]!)))
      throw new CliError(`no client ${args.positionals[0]}`);
    println(ctx.io.stdout, `deleted client ${args.positionals[0]}`);
  },
};

export const clientCommands: readonly Command[] = [
  clientAddCommand,
  clientListCommand,
  clientShowCommand,
  clientDeleteCommand,
];
