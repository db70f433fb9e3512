// Environment → typed, validated configuration. Read once at start; nothing else reads process.env.
// Every problem names the variable and what is wrong, so an operator can fix it from the message alone.

export interface Config {
  issuer: string;
  port: number;
  host: string;
  databaseUrl: string | undefined;
  dataDir: string;
  logLevel: LogLevel;
  templatesDir: string | undefined;
  trustProxy: boolean;
  /** Supported scopes, in the order they are advertised. */
  scopes: string[];
  scopeDescriptions: Record<string, string>;
  codeTtl: number;
  accessTokenTtl: number;
  refreshTokenTtl: number;
  refreshReuseWindow: number;
  sessionIdleTtl: number;
  sessionTtl: number;
  loginMaxAttemptsPerAccount: number;
  loginMaxAttemptsPerAddress: number;
  loginThrottleWindow: number;
  allowDynamicRegistration: boolean;
  registrationAccessToken: string | undefined;
  registrationRateLimit: number;
  unusedClientTtl: number;
  cimdAllowLoopback: boolean;
  cimdAllowedHosts: string[] | undefined;
  allowedRedirectUriPatterns: RegExp[] | undefined;
  /** Resource servers declared in configuration (RESOURCE_SERVERS), created or updated at start. */
  resourceServers: DeclaredResourceServer[];
  shutdownTimeout: number;
}

export interface DeclaredResourceServer {
  uri: string;
  clientId: string;
  clientSecret: string;
  name: string;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  const v = raw.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function list(env: Env, name: string): string[] | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  return raw.split(/[\s,]+/).filter(Boolean);
}

function parseIssuer(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('ISSUER', `must be an absolute URL, got "${raw}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError('ISSUER', 'must use https (or http for local development)');
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new ConfigError('ISSUER', 'must not have a query, fragment or credentials (RFC 8414 §2)');
  }
  // The issuer identifier is the public URL with no trailing slash.
  return url.href.replace(/\/+$/, '');
}

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // RFC 6749 §3.3 scope-token

const DEFAULT_SCOPE_DESCRIPTIONS: Record<string, string> = {
  mcp: 'Use the MCP server named above, as you',
  offline_access: 'Stay connected when you are away',
};

function parseResourceServers(raw: string | undefined): DeclaredResourceServer[] {
  if (raw === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(
      'RESOURCE_SERVERS',
      'must be a JSON array of {"uri","client_id","client_secret","name"?} objects',
    );
  }
  if (!Array.isArray(parsed)) throw new ConfigError('RESOURCE_SERVERS', 'must be a JSON array');
  return parsed.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null) {
      throw new ConfigError('RESOURCE_SERVERS', `entry ${i} must be an object`);
    }
    const o = item as Record<string, unknown>;
    for (const k of ['uri', 'client_id', 'client_secret']) {
      if (typeof o[k] !== 'string' || (o[k] as string).length === 0) {
        throw new ConfigError('RESOURCE_SERVERS', `entry ${i} needs a non-empty "${k}"`);
      }
    }
    if ((o.client_secret as string).length < 32) {
      throw new ConfigError('RESOURCE_SERVERS', `entry ${i}: client_secret must be at least 32 characters`);
    }
    return {
      uri: o.uri as string,
      clientId: o.client_id as string,
      clientSecret: o.client_secret as string,
      name: typeof o.name === 'string' ? o.name : (o.uri as string),
    };
  });
}

export function loadConfig(env: Env = process.env): Config {
  const port = int(env, 'PORT', 3000, 0, 65535);
  const host = str(env, 'HOST') ?? '127.0.0.1';
  const issuer = parseIssuer(str(env, 'ISSUER') ?? `http://localhost:${port}`);

  const databaseUrl = str(env, 'DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(
      'DATABASE_URL',
      'must be a postgres:// or postgresql:// URL (unset it for the embedded database)',
    );
  }

  const logLevel = (str(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }

  const scopes = list(env, 'SCOPES') ?? ['mcp'];
  for (const s of scopes) {
    if (!SCOPE_TOKEN.test(s))
      throw new ConfigError('SCOPES', `"${s}" is not a valid scope name (RFC 6749 §3.3)`);
  }
  let scopeDescriptions: Record<string, string> = { ...DEFAULT_SCOPE_DESCRIPTIONS };
  const rawDescriptions = str(env, 'SCOPE_DESCRIPTIONS');
  if (rawDescriptions !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawDescriptions);
    } catch {
      throw new ConfigError('SCOPE_DESCRIPTIONS', 'must be a JSON object of scope name to description');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError('SCOPE_DESCRIPTIONS', 'must be a JSON object of scope name to description');
    }
    for (const [k, v] of Object.entries(parsed)) {
      if (typeof v !== 'string')
        throw new ConfigError('SCOPE_DESCRIPTIONS', `the description of "${k}" must be a string`);
    }
    scopeDescriptions = { ...scopeDescriptions, ...(parsed as Record<string, string>) };
  }

  const registrationAccessToken = str(env, 'REGISTRATION_ACCESS_TOKEN');
  if (registrationAccessToken !== undefined && registrationAccessToken.length < 32) {
    throw new ConfigError('REGISTRATION_ACCESS_TOKEN', 'must be at least 32 characters');
  }

  let allowedRedirectUriPatterns: RegExp[] | undefined;
  const patterns = list(env, 'ALLOWED_REDIRECT_URI_PATTERNS');
  if (patterns !== undefined) {
    allowedRedirectUriPatterns = patterns.map((p) => {
      // Glob-like: `*` matches within one path segment or host label; everything else is literal.
      const escaped = p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/?#]*');
      return new RegExp(`^${escaped}$`);
    });
  }

  const sessionIdleTtl = int(env, 'SESSION_IDLE_TTL', 8 * 3600, 60, 365 * 86400);
  const sessionTtl = int(env, 'SESSION_TTL', 7 * 86400, 60, 365 * 86400);
  if (sessionIdleTtl > sessionTtl) {
    throw new ConfigError('SESSION_IDLE_TTL', `must not exceed SESSION_TTL (${sessionTtl})`);
  }

  return {
    issuer,
    port,
    host,
    databaseUrl,
    dataDir: str(env, 'DATA_DIR') ?? './data',
    logLevel: logLevel as LogLevel,
    templatesDir: str(env, 'TEMPLATES_DIR'),
    trustProxy: bool(env, 'TRUST_PROXY', false),
    scopes,
    scopeDescriptions,
    codeTtl: int(env, 'CODE_TTL', 600, 1, 3600),
    accessTokenTtl: int(env, 'ACCESS_TOKEN_TTL', 3600, 1, 86400 * 7),
    refreshTokenTtl: int(env, 'REFRESH_TOKEN_TTL', 2592000, 1, 86400 * 366),
    refreshReuseWindow: int(env, 'REFRESH_REUSE_WINDOW', 60, 0, 3600),
    sessionIdleTtl,
    sessionTtl,
    loginMaxAttemptsPerAccount: int(env, 'LOGIN_MAX_ATTEMPTS_PER_ACCOUNT', 5, 1, 1000),
    loginMaxAttemptsPerAddress: int(env, 'LOGIN_MAX_ATTEMPTS_PER_ADDRESS', 20, 1, 100000),
    loginThrottleWindow: int(env, 'LOGIN_THROTTLE_WINDOW', 900, 1, 86400),
    allowDynamicRegistration: bool(env, 'ALLOW_DYNAMIC_REGISTRATION', true),
    registrationAccessToken,
    registrationRateLimit: int(env, 'REGISTRATION_RATE_LIMIT', 20, 1, 100000),
    unusedClientTtl: int(env, 'UNUSED_CLIENT_TTL', 30 * 86400, 60, 3650 * 86400),
    cimdAllowLoopback: bool(env, 'CIMD_ALLOW_LOOPBACK', false),
    cimdAllowedHosts: list(env, 'CIMD_ALLOWED_HOSTS')?.map((h) => h.toLowerCase()),
    allowedRedirectUriPatterns,
    resourceServers: parseResourceServers(str(env, 'RESOURCE_SERVERS')),
    shutdownTimeout: int(env, 'SHUTDOWN_TIMEOUT', 10, 1, 600),
  };
}
