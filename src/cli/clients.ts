// `latchkey client add|list|show|delete`: OAuth clients of every kind (operator-created, dynamically registered,
// CIMD documents cached from their URL). A new client's secret is printed once and stored only as a hash.
import { type ClientAuthMethod, SECRET_AUTH_METHODS } from '../oauth/client-auth.ts';
import { type ClientMetadata, validateClientMetadata } from '../oauth/client-metadata.ts';
import { createClient } from '../oauth/client-registration.ts';
import { OAuthError } from '../oauth/errors.ts';
import { AUTHORIZATION_CODE, GRANT_TYPES } from '../oauth/grants/index.ts';
import { REFRESH_TOKEN } from '../oauth/grants/refresh-token.ts';
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
  summary: 'Register a client (for apps that cannot register themselves, and machine clients)',
  description:
    'Public clients (the default) authenticate with PKCE alone; --confidential issues a client secret, printed\n' +
    'once, for client_secret_basic (or client_secret_post with --auth-method). A machine client that acts for\n' +
    'itself: --grant-type client_credentials (always confidential, no redirect URI).',
  options: {
    name: { type: 'string', value: 'NAME', description: 'the name shown on the consent page (required)' },
    'redirect-uri': {
      type: 'string',
      multiple: true,
      value: 'URI',
      description: 'a redirect URI (repeat for more; required for authorization_code)',
    },
    'grant-type': {
      type: 'string',
      multiple: true,
      value: 'TYPE',
      description: `${GRANT_TYPES.map((g) => g.type).join(', ')} (repeat for more; default authorization_code and refresh_token)`,
    },
    scope: {
      type: 'string',
      value: 'SCOPE',
      description: 'the scopes the client may ask for (default: all)',
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
    const grantTypes = listOption(args, 'grant-type');
    if (grantTypes.length === 0) {
      grantTypes.push(AUTHORIZATION_CODE, ...(booleanOption(args, 'no-refresh') ? [] : [REFRESH_TOKEN]));
    }
    // Grants only confidential clients may use (client_credentials) make the client confidential.
    const confidential =
      booleanOption(args, 'confidential') ||
      GRANT_TYPES.some((g) => g.confidentialOnly && grantTypes.includes(g.type));
    const method = stringOption(args, 'auth-method') ?? (confidential ? 'client_secret_basic' : 'none');
    if (!SECRET_AUTH_METHODS.includes(method as ClientAuthMethod) && method !== 'none') {
      throw new UsageError('--auth-method must be client_secret_basic or client_secret_post');
    }
    if (method !== 'none' && !confidential) throw new UsageError('--auth-method needs --confidential');

    const redirectUris = listOption(args, 'redirect-uri');
    let metadata: ClientMetadata;
    try {
      // The same rules as dynamic registration, with the grants only an operator may give.
      metadata = validateClientMetadata(
        {
          client_name: name,
          grant_types: grantTypes,
          token_endpoint_auth_method: method,
          ...(redirectUris.length > 0 && { redirect_uris: redirectUris }),
          ...(stringOption(args, 'scope') !== undefined && { scope: stringOption(args, 'scope') }),
        },
        { source: 'operator', supportedScopes: ctx.config.scopes },
      );
    } catch (err) {
      if (err instanceof OAuthError) throw new UsageError(err.description);
      throw err;
    }
    const { client, secret } = await createClient((await ctx.stores()).clients, 'OPERATOR', metadata);
    println(ctx.io.stdout, `client_id: ${client.clientId}`);
    if (secret) {
      println(ctx.io.stdout, `client_secret: ${secret}`);
      println(ctx.io.stderr, 'The secret is shown only now; store it safely.');
    }
    println(ctx.io.stdout, `token_endpoint_auth_method: ${method}`);
    println(ctx.io.stdout, `grant_types: ${metadata.grantTypes.join(' ')}`);
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
    const clients = await (await ctx.stores()).clients.list(kind);
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
    const c = await (await ctx.stores()).clients.findByClientId(args.positionals[0]!);
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
    if (!(await (await ctx.stores()).clients.delete(args.positionals[0]!)))
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
