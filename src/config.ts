// Environment → typed, validated configuration. Read once at start; nothing else reads process.env.
// Every problem names the variable and what is wrong, so an operator can fix it from the message alone.
//
// TABLE below declares each variable once: the Config field it sets, its meaning, and the row that reads and checks
// it (whose fallback is the default). The README's configuration table and .env.example are generated from it
// (`node --import tsx scripts/config-docs.ts`) and test/config-table.test.ts holds them to it.

import { METRICS_ROWS, type MetricsConfig } from './config/metrics.ts';
import { bool, ConfigError, type Env, int, list, str } from './config/read.ts';
import { SLOW_CLIENT_ROWS } from './config/slow-client-rows.ts';
import { configTable, earlier } from './config/table.ts';
import { TRACE_ROWS, type TraceConfig } from './config/trace.ts';
import { UPSTREAM_ROWS } from './config/upstream-rows.ts';
import {
  checkDeclaredProviders,
  type DeclaredResourceServer,
  type LogFormat,
  type LogLevel,
  parseDatabaseUrl,
  parseIssuer,
  parseLogFormat,
  parseLogLevel,
  parseRedirectUriPatterns,
  parseRegistrationAccessToken,
  parseResourceServers,
  parseScopeDescriptions,
  parseScopes,
  parseTrustProxy,
  type TrustProxy,
} from './config/values.ts';
import type { ProviderConfig, UpstreamKey } from './upstream/config.ts';

export { ConfigError } from './config/read.ts';
export type { Variable } from './config/table.ts';
export {
  type DeclaredResourceServer,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
  type TrustProxy,
} from './config/values.ts';

export interface Config extends MetricsConfig, TraceConfig {
  issuer: string;
  port: number;
  host: string;
  databaseUrl: string | undefined;
  /** Connections in the Postgres pool (the notification listener holds one more). */
  databasePoolSize: number;
  dataDir: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  templatesDir: string | undefined;
  /** Which proxies' X-Forwarded-For to believe: none, the nearest n hops, or these addresses/CIDRs. */
  trustProxy: TrustProxy;
  /** Slow-client limits, in seconds (0 turns one off) and bytes: see the README's "Security notes". */
  connectionTimeout: number;
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  bodyLimit: number;
  /** Supported scopes, in the order they are advertised. */
  scopes: string[];
  scopeDescriptions: Record<string, string>;
  codeTtl: number;
  accessTokenTtl: number;
  refreshTokenTtl: number;
  refreshReuseWindow: number;
  sessionIdleTtl: number;
  sessionTtl: number;
  passwordLinkTtl: number;
  loginMaxAttemptsPerAccount: number;
  loginMaxAttemptsPerAddress: number;
  loginThrottleWindow: number;
  loginMaxDelay: number;
  allowDynamicRegistration: boolean;
  registrationAccessToken: string | undefined;
  registrationRateLimit: number;
  unusedClientTtl: number;
  auditRetention: number;
  cimdAllowLoopback: boolean;
  cimdAllowedHosts: string[] | undefined;
  cimdFailureTtl: number;
  cimdHostFetchLimit: number;
  allowedRedirectUriPatterns: RegExp[] | undefined;
  /** Resource servers declared in configuration (RESOURCE_SERVERS), created or updated at start. */
  resourceServers: DeclaredResourceServer[];
  shutdownTimeout: number;
  upstreamAllowInsecureLoopback: boolean;
  /** Seconds for each upstream HTTP call. */
  upstreamHttpTimeout: number;
  upstreamProvidersFile: string | undefined;
  /** Upstream identity providers (UPSTREAM_PROVIDERS or its file), checked; empty: no federation. */
  upstreamProviders: ProviderConfig[];
  /** Unset: the embedded database's key file (see resolveUpstreamKeys). */
  upstreamTokenKeys: UpstreamKey[] | undefined;
  passwordSignIn: boolean;
}

const DAY = 86400;

// Rows are read in this order (a row may use the values of rows above it) and documented in this order.
const TABLE = configTable<Config>({
  port: {
    section: 'Server',
    meaning: 'port to listen on (`0` picks a free one)',
    read: (env) => int(env, 'PORT', 3000, 0, 65535),
  },
  host: {
    meaning: 'address to listen on; the container sets `0.0.0.0`',
    read: (env) => str(env, 'HOST') ?? '127.0.0.1',
  },
  issuer: {
    meaning: 'public base URL, which is the issuer identifier (https in production; no trailing slash)',
    unset: '`http://localhost:$PORT`',
    read: (env, c) => parseIssuer(str(env, 'ISSUER') ?? `http://localhost:${earlier(c, 'port')}`),
  },
  trustProxy: {
    meaning:
      'which reverse proxies to believe about the client address (`X-Forwarded-For`): `false`, a hop count (`true` = `1`), or a comma-separated list of proxy addresses/CIDRs',
    read: (env) => parseTrustProxy(str(env, 'TRUST_PROXY')),
  },
  ...SLOW_CLIENT_ROWS,
  logLevel: {
    meaning: 'pino log level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`',
    read: (env) => parseLogLevel(str(env, 'LOG_LEVEL') ?? 'info'),
  },
  logFormat: {
    meaning:
      'log lines as `json` (one object a line, for log collectors) or `pretty` (plain lines for a person at a terminal)',
    read: (env) => parseLogFormat(str(env, 'LOG_FORMAT') ?? 'json'),
  },
  shutdownTimeout: {
    meaning: 'seconds to let requests under way finish after SIGTERM before exiting anyway',
    read: (env) => int(env, 'SHUTDOWN_TIMEOUT', 10, 1, 600),
  },
  databaseUrl: {
    section: 'Storage',
    meaning: 'PostgreSQL connection string (`postgres://` or `postgresql://`)',
    unset: 'the embedded database in `DATA_DIR`',
    read: (env) => parseDatabaseUrl(str(env, 'DATABASE_URL')),
  },
  databasePoolSize: {
    meaning:
      'connections to PostgreSQL per instance (plus one that carries every change notification); 10 keeps 2–8 cores busy, as queries are short and Postgres does the waiting',
    read: (env) => int(env, 'DATABASE_POOL_SIZE', 10, 1, 500),
  },
  dataDir: {
    meaning: 'directory of the embedded database, its lock and its socket, relative to the working directory',
    read: (env) => str(env, 'DATA_DIR') ?? './data',
  },
  templatesDir: {
    section: 'Pages',
    meaning:
      'folder whose `*.eta`, `latchkey.css` and `favicon.svg` files replace the built-in ones of the same name',
    unset: 'unset',
    read: (env) => str(env, 'TEMPLATES_DIR'),
  },
  scopes: {
    section: 'Scopes',
    meaning: 'supported scopes, comma- or space-separated, in the order they are advertised',
    read: (env) => parseScopes(list(env, 'SCOPES') ?? ['mcp']),
  },
  scopeDescriptions: {
    meaning:
      'JSON object of scope name to the text shown on the consent page, merged over the built-in texts',
    unset: 'the built-in texts',
    read: (env) => parseScopeDescriptions(str(env, 'SCOPE_DESCRIPTIONS')),
  },
  codeTtl: {
    section: 'Lifetimes (seconds)',
    meaning: 'authorization code lifetime',
    read: (env) => int(env, 'CODE_TTL', 600, 1, 3600),
  },
  accessTokenTtl: {
    meaning: 'access token lifetime',
    read: (env) => int(env, 'ACCESS_TOKEN_TTL', 3600, 1, 7 * DAY),
  },
  refreshTokenTtl: {
    meaning: 'refresh token lifetime (30 days)',
    read: (env) => int(env, 'REFRESH_TOKEN_TTL', 30 * DAY, 1, 366 * DAY),
  },
  refreshReuseWindow: {
    meaning:
      'seconds a rotated refresh token still gets the same answer (concurrent refreshes) before a replay revokes the grant',
    read: (env) => int(env, 'REFRESH_REUSE_WINDOW', 60, 0, 3600),
  },
  sessionIdleTtl: {
    meaning: 'a sign-in session ends after this long without use (8 hours)',
    read: (env) => int(env, 'SESSION_IDLE_TTL', 8 * 3600, 60, 365 * DAY),
  },
  sessionTtl: {
    meaning: 'a sign-in session ends after this long in any case (7 days); not less than `SESSION_IDLE_TTL`',
    read: (env, c) => {
      const sessionTtl = int(env, 'SESSION_TTL', 7 * DAY, 60, 365 * DAY);
      if (earlier(c, 'sessionIdleTtl') > sessionTtl) {
        throw new ConfigError('SESSION_IDLE_TTL', `must not exceed SESSION_TTL (${sessionTtl})`);
      }
      return sessionTtl;
    },
  },
  passwordLinkTtl: {
    meaning: 'a link from `latchkey user invite` or `user reset-password` works once, for this long (3 days)',
    read: (env) => int(env, 'PASSWORD_LINK_TTL', 3 * DAY, 300, 30 * DAY),
  },
  loginMaxAttemptsPerAccount: {
    section: 'Sign-in throttling',
    meaning:
      'failed sign-ins allowed per account from one client address within `LOGIN_THROTTLE_WINDOW`; past it from anywhere, sign-ins to the account are slowed',
    read: (env) => int(env, 'LOGIN_MAX_ATTEMPTS_PER_ACCOUNT', 5, 1, 1000),
  },
  loginMaxAttemptsPerAddress: {
    meaning: 'failed sign-ins allowed per client address within `LOGIN_THROTTLE_WINDOW`',
    read: (env) => int(env, 'LOGIN_MAX_ATTEMPTS_PER_ADDRESS', 20, 1, 100000),
  },
  loginThrottleWindow: {
    meaning: 'the sign-in throttling window, seconds',
    read: (env) => int(env, 'LOGIN_THROTTLE_WINDOW', 900, 1, DAY),
  },
  loginMaxDelay: {
    meaning:
      'the longest wait, seconds, added to each sign-in to an account tried more than `LOGIN_MAX_ATTEMPTS_PER_ACCOUNT` times from anywhere in the window (the wait grows up to this; it never refuses)',
    read: (env) => int(env, 'LOGIN_MAX_DELAY', 10, 0, 60),
  },
  allowDynamicRegistration: {
    section: 'Clients',
    meaning: 'serve dynamic client registration (RFC 7591) at `/register` (true/false)',
    read: (env) => bool(env, 'ALLOW_DYNAMIC_REGISTRATION', true),
  },
  registrationAccessToken: {
    meaning: 'when set (at least 32 characters), `/register` requires it as a Bearer token (RFC 7591 §3)',
    unset: 'unset',
    read: (env) => parseRegistrationAccessToken(str(env, 'REGISTRATION_ACCESS_TOKEN')),
  },
  registrationRateLimit: {
    meaning: 'registrations allowed per client address per hour',
    read: (env) => int(env, 'REGISTRATION_RATE_LIMIT', 20, 1, 100000),
  },
  unusedClientTtl: {
    meaning: 'seconds after which an unused dynamically registered client is removed (30 days)',
    read: (env) => int(env, 'UNUSED_CLIENT_TTL', 30 * DAY, 60, 3650 * DAY),
  },
  auditRetention: {
    meaning: 'seconds an audit event is kept before the sweeper removes it (90 days)',
    read: (env) => int(env, 'AUDIT_RETENTION', 90 * DAY, 60, 36500 * DAY),
  },
  allowedRedirectUriPatterns: {
    meaning:
      'redirect URIs a client may register, comma- or space-separated; `*` matches within one host label or path segment',
    unset: 'any https or loopback http URI',
    read: (env) => parseRedirectUriPatterns(list(env, 'ALLOWED_REDIRECT_URI_PATTERNS')),
  },
  cimdAllowLoopback: {
    meaning:
      'accept Client ID Metadata Document URLs on loopback addresses, over http too (development only)',
    read: (env) => bool(env, 'CIMD_ALLOW_LOOPBACK', false),
  },
  cimdAllowedHosts: {
    meaning:
      'hosts whose Client ID Metadata Documents are accepted, comma-separated; `*.example.com` matches subdomains',
    unset: 'any public host',
    read: (env) => list(env, 'CIMD_ALLOWED_HOSTS')?.map((h) => h.toLowerCase()),
  },
  cimdFailureTtl: {
    meaning:
      'seconds a failed Client ID Metadata Document fetch is remembered, so requests naming that URL meanwhile fetch nothing (0: not remembered)',
    read: (env) => int(env, 'CIMD_FAILURE_TTL', 60, 0, 3600),
  },
  cimdHostFetchLimit: {
    meaning:
      'Client ID Metadata Document fetches per host per minute, per instance, however many URLs name it',
    read: (env) => int(env, 'CIMD_HOST_FETCH_LIMIT', 30, 1, 100000),
  },
  resourceServers: {
    section: 'Resource servers',
    meaning:
      'JSON array of `{"uri","client_id","client_secret","name"}` (secret at least 32 characters), optionally with `"upstream_claims"`, `"upstream_token"`, `"require_upstream"`, created or updated at start; or use `latchkey resource add`',
    unset: 'unset',
    read: (env) => parseResourceServers(str(env, 'RESOURCE_SERVERS')),
  },
  ...UPSTREAM_ROWS,
  ...METRICS_ROWS,
  ...TRACE_ROWS,
});

/** Every variable Latchkey reads, in table order: the source of the README table and .env.example. */
export const CONFIG_VARIABLES = TABLE.variables;

export function loadConfig(env: Env = process.env): Config {
  const config = TABLE.load(env);
  // RESOURCE_SERVERS is read before the providers: its provider ids are checked once both are known.
  checkDeclaredProviders(
    config.resourceServers,
    config.upstreamProviders.map((p) => p.id),
  );
  return config;
}
