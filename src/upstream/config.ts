// Upstream identity providers (docs: README "Sign in through an upstream provider"; design: spec federation §2):
// UPSTREAM_PROVIDERS (or UPSTREAM_PROVIDERS_FILE) parsed and checked at start, each problem naming the entry index and
// the field; UPSTREAM_TOKEN_KEYS, or for the embedded database a key file generated in DATA_DIR. No network here.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config/read.ts';
import { checkUpstreamUrl, providerFields, type RawEntry } from './config-fields.ts';

export type ProviderType = 'oidc' | 'oauth2' | 'plane' | 'github' | 'google';
export type TokenAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

interface CommonProvider {
  id: string;
  name: string;
  clientId: string;
  clientSecret: string | undefined;
  scopes: string[];
  /** Undefined for oidc/google without an explicit choice: picked from the metadata. */
  tokenEndpointAuthMethod: TokenAuthMethod | undefined;
  pkce: boolean;
  extraAuthorizeParams: Record<string, string>;
  linkPolicy: 'subject' | 'verified_email';
  createUsers: boolean;
  allowAnyone: boolean;
  allowedEmailDomains: string[] | undefined;
  trustEmail: boolean;
  exposeClaims: string[];
}

export interface OidcProvider extends CommonProvider {
  type: 'oidc' | 'google';
  issuer: string;
  /** Google only: sent as `hd`, and the ID token's `hd` must equal it. */
  hostedDomain: string | undefined;
}

export interface OAuth2Provider extends CommonProvider {
  type: 'oauth2';
  authorizationEndpoint: string;
  tokenEndpoint: string;
  userinfoEndpoint: string;
  revocationEndpoint: string | undefined;
  subjectClaim: string;
  emailClaim: string;
  emailVerifiedClaim: string | undefined;
  nameClaim: string;
  usernameClaim: string | undefined;
}

export interface PlaneProvider extends CommonProvider {
  type: 'plane';
  /** Browser-facing (the authorization page). */
  baseUrl: string;
  /** Server-to-server: token and API calls. */
  internalBaseUrl: string;
  allowedWorkspaces: string[] | undefined;
}

export interface GithubProvider extends CommonProvider {
  type: 'github';
  baseUrl: string;
  apiBaseUrl: string;
  allowedOrgs: string[] | undefined;
}

export type ProviderConfig = OidcProvider | OAuth2Provider | PlaneProvider | GithubProvider;

const ID = /^[a-z0-9][a-z0-9-]{0,31}$/;
const TYPES: readonly ProviderType[] = ['oidc', 'oauth2', 'plane', 'github', 'google'];

/** Reads UPSTREAM_PROVIDERS, or the file UPSTREAM_PROVIDERS_FILE names (both set is an error). */
export function parseUpstreamProviders(
  raw: string | undefined,
  file: string | undefined,
  allowInsecureLoopback: boolean,
): ProviderConfig[] {
  if (raw !== undefined && file !== undefined) {
    throw new ConfigError(
      'UPSTREAM_PROVIDERS',
      'set UPSTREAM_PROVIDERS or UPSTREAM_PROVIDERS_FILE, not both',
    );
  }
  let text = raw;
  let variable = 'UPSTREAM_PROVIDERS';
  if (file !== undefined) {
    variable = 'UPSTREAM_PROVIDERS_FILE';
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(
        variable,
        `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  }
  if (text === undefined || text.trim() === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(variable, 'UPSTREAM_PROVIDERS must be JSON: an array of provider objects');
  }
  if (!Array.isArray(parsed)) throw new ConfigError(variable, 'UPSTREAM_PROVIDERS must be a JSON array');
  const seen = new Set<string>();
  return parsed.map((item: unknown, index) => {
    const fail = (field: string, problem: string): never => {
      throw new ConfigError(variable, `UPSTREAM_PROVIDERS entry ${index}, field "${field}": ${problem}`);
    };
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      fail('(entry)', 'must be an object');
    const entry = item as RawEntry;
    if (typeof entry.id !== 'string' || !ID.test(entry.id)) fail('id', `must match ${ID.source}`);
    if (seen.has(entry.id as string)) fail('id', `"${entry.id}" is used twice`);
    seen.add(entry.id as string);
    if (!TYPES.includes(entry.type as ProviderType)) fail('type', `must be one of ${TYPES.join(', ')}`);
    const url = (field: string, value: string) => checkUpstreamUrl(value, allowInsecureLoopback, fail, field);
    return providerFields(entry, entry.type as ProviderType, fail, url);
  });
}

/** Where a provider's app must send the browser back to; printed at start and by `latchkey upstream list`. */
export function redirectUri(issuer: string, providerId: string): string {
  return `${issuer}/login/upstream/${providerId}/callback`;
}

export interface UpstreamKey {
  kid: string;
  key: Buffer;
}

const KID = /^[A-Za-z0-9_-]{1,32}$/;

/** `kid:key,…`: key = base64url of exactly 32 bytes; the first encrypts, all decrypt. */
export function parseUpstreamTokenKeys(
  raw: string | undefined,
  variable = 'UPSTREAM_TOKEN_KEYS',
): UpstreamKey[] | undefined {
  if (raw === undefined) return undefined;
  const keys: UpstreamKey[] = [];
  for (const [i, part] of raw
    .split(/[\s,]+/)
    .filter(Boolean)
    .entries()) {
    const colon = part.indexOf(':');
    const kid = colon < 0 ? part : part.slice(0, colon);
    if (!KID.test(kid)) throw new ConfigError(variable, `key ${i}: the kid must match ${KID.source}`);
    if (keys.some((k) => k.kid === kid))
      throw new ConfigError(variable, `key ${i}: the kid "${kid}" is used twice`);
    const b64 = colon < 0 ? '' : part.slice(colon + 1);
    const key = /^[A-Za-z0-9_-]+$/.test(b64) ? Buffer.from(b64, 'base64url') : Buffer.alloc(0);
    if (key.length !== 32) {
      throw new ConfigError(variable, `key ${i} ("${kid}"): must be base64url of exactly 32 bytes`);
    }
    keys.push({ kid, key });
  }
  if (keys.length === 0) throw new ConfigError(variable, 'holds no key');
  return keys;
}

export const KEY_FILE = 'upstream-token-keys';

/**
 * The keys that encrypt upstream tokens: UPSTREAM_TOKEN_KEYS when set; none without providers; otherwise (the embedded
 * database: the config refuses DATABASE_URL without keys) DATA_DIR/upstream-token-keys, generated on first start.
 */
export function resolveUpstreamKeys(
  config: {
    upstreamTokenKeys: UpstreamKey[] | undefined;
    upstreamProviders: ProviderConfig[];
    dataDir: string;
  },
  now = new Date(),
): UpstreamKey[] {
  if (config.upstreamTokenKeys) return config.upstreamTokenKeys;
  if (config.upstreamProviders.length === 0) return [];
  const path = join(config.dataDir, KEY_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(config.dataDir, { recursive: true });
    const kid = `gen-${now.toISOString().slice(0, 10).replaceAll('-', '')}`;
    const line = `${kid}:${randomBytes(32).toString('base64url')}\n`;
    try {
      writeFileSync(path, line, { mode: 0o600, flag: 'wx' });
      text = line;
    } catch (e) {
      // Another process wrote it first: read theirs.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      text = readFileSync(path, 'utf8');
    }
  }
  return parseUpstreamTokenKeys(text.trim(), path) ?? [];
}
