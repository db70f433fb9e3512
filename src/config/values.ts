// Parsers for the configuration values that are more than a number, a flag or a word. Each takes the trimmed value
// of one variable (undefined when unset) and throws a ConfigError naming it.
import { isIP } from 'node:net';
import { ConfigError } from './read.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function parseLogFormat(raw: string): LogFormat {
  const v = raw.toLowerCase();
  if (!(LOG_FORMATS as readonly string[]).includes(v)) {
    throw new ConfigError('LOG_FORMAT', `must be json or pretty, got "${raw}"`);
  }
  return v as LogFormat;
}

export interface DeclaredResourceServer {
  uri: string;
  clientId: string;
  clientSecret: string;
  name: string;
  /** `upstream_claims`: /introspect shows the upstream identity (spec federation §2.2). */
  exposeUpstreamClaims: boolean;
  /** `upstream_token`: provider ids whose upstream token it may obtain by token exchange. */
  upstreamTokenProviders: string[];
  /** `require_upstream`: authorizations need a session signed in through this provider. */
  requiredUpstreamProvider: string | null;
}

export function parseIssuer(raw: string): string {
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

export function parseDatabaseUrl(raw: string | undefined): string | undefined {
  if (raw !== undefined && !/^postgres(ql)?:\/\//.test(raw)) {
    throw new ConfigError(
      'DATABASE_URL',
      'must be a postgres:// or postgresql:// URL (unset it for the embedded database)',
    );
  }
  return raw;
}

export function parseLogLevel(raw: string): LogLevel {
  const logLevel = raw.toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  return logLevel as LogLevel;
}

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // RFC 6749 §3.3 scope-token

export function parseScopes(scopes: string[]): string[] {
  for (const s of scopes) {
    if (!SCOPE_TOKEN.test(s))
      throw new ConfigError('SCOPES', `"${s}" is not a valid scope name (RFC 6749 §3.3)`);
  }
  return scopes;
}

const DEFAULT_SCOPE_DESCRIPTIONS: Record<string, string> = {
  mcp: 'Use the MCP server named above, as you',
  offline_access: 'Stay connected when you are away',
};

/** The built-in descriptions, with those given (a JSON object of scope name to text) merged over them. */
export function parseScopeDescriptions(raw: string | undefined): Record<string, string> {
  if (raw === undefined) return { ...DEFAULT_SCOPE_DESCRIPTIONS };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
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
  return { ...DEFAULT_SCOPE_DESCRIPTIONS, ...(parsed as Record<string, string>) };
}

export function parseRegistrationAccessToken(raw: string | undefined): string | undefined {
  if (raw !== undefined && raw.length < 32) {
    throw new ConfigError('REGISTRATION_ACCESS_TOKEN', 'must be at least 32 characters');
  }
  return raw;
}

/** Glob-like: `*` matches within one path segment or host label; everything else is literal. */
export function parseRedirectUriPatterns(patterns: string[] | undefined): RegExp[] | undefined {
  return patterns?.map((p) => {
    const escaped = p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/?#]*');
    return new RegExp(`^${escaped}$`);
  });
}

export function parseResourceServers(raw: string | undefined): DeclaredResourceServer[] {
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
      ...declaredUpstreamAccess(o, i),
    };
  });
}

/** TRUST_PROXY as Fastify's trustProxy takes it: nobody, the nearest n hops, or these proxies' addresses. */
export type TrustProxy = false | number | string[];

// proxy-addr's names for address ranges (what Fastify's trustProxy list accepts besides addresses and CIDRs).
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

export function parseTrustProxy(raw: string | undefined): TrustProxy {
  if (raw === undefined) return false;
  const v = raw.toLowerCase();
  if (['false', 'no', 'off', '0'].includes(v)) return false;
  // `true` once meant "believe every hop", which lets any client choose its own address; it now means one hop.
  if (['true', 'yes', 'on'].includes(v)) return 1;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    if (hops > 10) throw new ConfigError('TRUST_PROXY', `a hop count must be between 0 and 10, got ${hops}`);
    return hops;
  }
  const entries = v.split(/[\s,]+/).filter(Boolean);
  for (const entry of entries) {
    if (!isProxyAddress(entry)) {
      throw new ConfigError(
        'TRUST_PROXY',
        `"${entry}" is not false, a hop count, an IP address, a CIDR range or one of ${PROXY_RANGE_NAMES.join(', ')}`,
      );
    }
  }
  return entries;
}

function isProxyAddress(entry: string): boolean {
  if (PROXY_RANGE_NAMES.includes(entry)) return true;
  const [address, prefix, extra] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

function declaredUpstreamAccess(
  o: Record<string, unknown>,
  i: number,
): Pick<
  DeclaredResourceServer,
  'exposeUpstreamClaims' | 'upstreamTokenProviders' | 'requiredUpstreamProvider'
> {
  const fail = (field: string, rule: string) =>
    new ConfigError('RESOURCE_SERVERS', `entry ${i}: "${field}" ${rule}`);
  if (o.upstream_claims !== undefined && typeof o.upstream_claims !== 'boolean') {
    throw fail('upstream_claims', 'must be true or false');
  }
  const tokens = o.upstream_token ?? [];
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string' && t !== '')) {
    throw fail('upstream_token', 'must be an array of provider ids');
  }
  if (o.require_upstream !== undefined && (typeof o.require_upstream !== 'string' || !o.require_upstream)) {
    throw fail('require_upstream', 'must be a provider id');
  }
  return {
    exposeUpstreamClaims: o.upstream_claims === true,
    upstreamTokenProviders: [...new Set(tokens as string[])],
    requiredUpstreamProvider: (o.require_upstream as string | undefined) ?? null,
  };
}

/** C4: every provider id RESOURCE_SERVERS names must be a configured upstream provider. */
export function checkDeclaredProviders(
  declared: readonly DeclaredResourceServer[],
  providerIds: readonly string[],
): void {
  declared.forEach((rs, i) => {
    for (const [field, id] of [
      ...rs.upstreamTokenProviders.map((id) => ['upstream_token', id] as const),
      ...(rs.requiredUpstreamProvider ? [['require_upstream', rs.requiredUpstreamProvider] as const] : []),
    ]) {
      if (!providerIds.includes(id)) {
        throw new ConfigError(
          'RESOURCE_SERVERS',
          `entry ${i}: "${field}" names "${id}", which is not a provider in UPSTREAM_PROVIDERS`,
        );
      }
    }
  });
}
