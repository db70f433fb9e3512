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
  doneResult,
  fieldsResult,
  listOption,
  stringOption,
  UsageError,
} from './command.ts';
import { formatTime, isoTime, listResult } from './table.ts';

/** How a client came to be, in the words the README uses: dynamic registration, a CIMD URL, or the operator. */
const KIND_NAMES = { DYNAMIC: 'DCR', CIMD: 'CIMD', OPERATOR: 'operator' } as const;

function clientType(c: { tokenEndpointAuthMethod: string }): 'public' | 'confidential' {
  return c.tokenEndpointAuthMethod === 'none' ? 'public' : 'confidential';
}

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
    return fieldsResult(
      {
        client_id: client.clientId,
        ...(secret && { client_secret: secret }),
        token_endpoint_auth_method: method,
        grant_types: metadata.grantTypes,
      },
      secret ? ['The secret is shown only now; store it safely.'] : [],
    );
  },
};

export const clientListCommand: Command = {
  name: ['client', 'list'],
  summary: 'List clients of every kind, with how each was registered and when it was last used',
  description:
    'KIND: DCR (registered itself through /register), CIMD (its client_id is the URL of its metadata document)\n' +
    'or operator (`latchkey client add`). TYPE: public (PKCE alone) or confidential (has a client secret).',
  options: {
    kind: { type: 'string', value: 'KIND', description: 'only DCR (or DYNAMIC), CIMD or OPERATOR clients' },
  },
  async run(ctx, args) {
    const given = stringOption(args, 'kind')?.toUpperCase();
    const kind = given === 'DCR' ? 'DYNAMIC' : given;
    if (kind !== undefined && kind !== 'DYNAMIC' && kind !== 'CIMD' && kind !== 'OPERATOR') {
      throw new UsageError('--kind must be DCR, CIMD or OPERATOR');
    }
    const clients = (await (await ctx.stores()).clients.list(kind)).map((c) => ({
      client_id: c.clientId,
      kind: KIND_NAMES[c.kind],
      type: clientType(c),
      name: c.name,
      token_endpoint_auth_method: c.tokenEndpointAuthMethod,
      created_at: isoTime(c.createdAt),
      last_used_at: isoTime(c.lastUsedAt),
    }));
    return listResult(
      clients,
      [
        ['CLIENT_ID', (c) => c.client_id],
        ['KIND', (c) => c.kind],
        ['TYPE', (c) => c.type],
        ['NAME', (c) => c.name],
        ['LAST USED', (c) => (c.last_used_at ? formatTime(new Date(c.last_used_at)) : 'never')],
      ],
      'no clients',
    );
  },
};

export const clientShowCommand: Command = {
  name: ['client', 'show'],
  summary: 'Show one client',
  args: [{ name: 'CLIENT_ID', description: 'the client_id' }],
  async run(ctx, args) {
    const c = await (await ctx.stores()).clients.findByClientId(args.positionals[0]!);
    if (!c) throw new CliError(`no client ${args.positionals[0]}`);
    const fields = {
      client_id: c.clientId,
      kind: KIND_NAMES[c.kind],
      type: clientType(c),
      name: c.name,
      redirect_uris: c.redirectUris,
      grant_types: c.grantTypes,
      token_endpoint_auth_method: c.tokenEndpointAuthMethod,
      has_secret: c.secretHash ? 'yes' : 'no',
      created: formatTime(c.createdAt),
      last_used: c.lastUsedAt ? formatTime(c.lastUsedAt) : 'never',
      ...(c.kind === 'CIMD' && c.freshUntil && { document_fresh_until: formatTime(c.freshUntil) }),
    };
    const result = fieldsResult(fields);
    // JSON carries times as ISO 8601 (null for never) and has_secret as a boolean.
    return {
      ...result,
      json: {
        ...fields,
        has_secret: Boolean(c.secretHash),
        created: isoTime(c.createdAt),
        last_used: isoTime(c.lastUsedAt),
        ...(c.kind === 'CIMD' && c.freshUntil && { document_fresh_until: isoTime(c.freshUntil) }),
      },
    };
  },
};

export const clientDeleteCommand: Command = {
  name: ['client', 'delete'],
  summary: 'Delete a client and every grant and token issued to it',
  args: [{ name: 'CLIENT_ID', description: 'the client_id' }],
  async run(ctx, args) {
    const clientId = args.positionals[0]!;
    if (!(await (await ctx.stores()).clients.delete(clientId))) throw new CliError(`no client ${clientId}`);
    return doneResult(`deleted client ${clientId}`, { deleted: true, client_id: clientId });
  },
};

export const clientCommands: readonly Command[] = [
  clientAddCommand,
  clientListCommand,
  clientShowCommand,
  clientDeleteCommand,
];
