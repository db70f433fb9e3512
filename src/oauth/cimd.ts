// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01; section numbers are -01's).
// A client_id that is an https URL names a JSON document holding the client's RFC 7591 metadata. This module
// decides which client_ids are such URLs (§3), fetches the document with SSRF guards (§4, §6.5, §6.6),
// validates it (§4.1, §6.1) and caches it in the database per HTTP caching (§4.4).
//
// SSRF guards, in the order they apply:
// 1. The URL: https only (http too, on a loopback host name, under CIMD_ALLOW_LOOPBACK), CIMD_ALLOWED_HOSTS.
// 2. The addresses: the host is resolved once, by us; if any address is special-use (RFC 6890 and the IANA
//    special-purpose registries) the fetch is refused before any connection. Under CIMD_ALLOW_LOOPBACK loopback,
//    and only loopback, is allowed.
// 3. The connection: the request's `lookup` hands the socket exactly the vetted addresses, so a second DNS answer
//    (rebinding) is never consulted; the connected peer is checked against them once more.
// 4. The response: no redirects followed, only 200, at most 5 KB (aborted while streaming), one time limit for
//    the whole exchange.
import { lookup as dnsLookup } from 'node:dns/promises';
import http, { type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIPv4, isIPv6, type LookupFunction } from 'node:net';
import type { Config } from '../config.ts';
import type { Client, Prisma } from '../generated/prisma/client.ts';
import { addSeconds, type Clock } from '../lib/clock.ts';
import type { ClientStore } from '../store/clients.ts';
import { type ClientMetadata, type ClientMetadataPolicy, validateClientMetadata } from './client-metadata.ts';
import { OAuthError } from './errors.ts';
import { isLoopbackHost } from './redirect-uri.ts';

export const CIMD_MAX_BYTES = 5 * 1024; // §6.6 suggests 5 kilobytes
export const CIMD_TIMEOUT_MS = 5000;
/** Freshness bounds (seconds): at least a minute so one sign-in does not refetch, at most a day. */
export const CIMD_MIN_FRESHNESS = 60;
export const CIMD_MAX_FRESHNESS = 86400;
/** Freshness when the response says nothing about caching. */
export const CIMD_DEFAULT_FRESHNESS = 300;
/**
 * How long past its freshness a document may still serve while its host is failing (RFC 5861 stale-if-error):
 * one hour rides out a brief outage without keeping a document its owner may have changed alive for long.
 */
export const CIMD_STALE_IF_ERROR = 3600;
const MAX_CLIENT_ID_LENGTH = 2000;

/** A fetch or validation failure. The description goes on the wire; `detail` only to the log. */
export class CimdError extends OAuthError {
  /** True for transport failures and 5xx: the host is failing, so a recent document may serve (RFC 5861). */
  readonly staleUsable: boolean;
  readonly detail: string | undefined;
  constructor(description: string, options: { staleUsable?: boolean; detail?: string } = {}) {
    super('invalid_client', `client metadata document: ${description}`);
    this.name = 'CimdError';
    this.staleUsable = options.staleUsable ?? false;
    this.detail = options.detail;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// §3 Client identifier URLs

/** True when `id` starts like a URL, so a failure to use it as a CIMD client_id is worth explaining. */
export function looksLikeUrlClientId(id: string): boolean {
  return /^https?:\/\//i.test(id);
}

/** Why `id` may not be used as a CIMD client_id (§3), or undefined when it may. */
export function cimdClientIdProblem(
  id: string,
  options: { allowLoopback?: boolean } = {},
): string | undefined {
  if (id.length > MAX_CLIENT_ID_LENGTH) return 'client_id URL is too long';
  // The URL parser drops or rewrites these, which would make the URL fetched differ from the client_id.
  if (/[\s\\\p{Cc}]/u.test(id))
    return 'client_id URL must not contain whitespace, control characters or backslashes';
  let url: URL;
  try {
    url = new URL(id);
  } catch {
    return 'client_id is not a URL';
  }
  const loopbackHttp = options.allowLoopback === true && isLoopbackHost(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopbackHttp)) {
    return 'client_id URL must use https';
  }
  if (url.username || url.password || /^[a-z]+:\/\/[^/?#]*@/i.test(id)) {
    return 'client_id URL must not contain a username or password';
  }
  if (id.includes('#')) return 'client_id URL must not contain a fragment';
  if (url.pathname === '/' || url.pathname === '') return 'client_id URL must have a path';
  // The parser removes dot segments, so look at the path as written (percent-encoded dots count, RFC 3986 §6.2.2.2).
  const rawPath = id.replace(/^[a-z]+:\/\/[^/?#]*/i, '').split('?')[0]!;
  const dotSegment = rawPath.split('/').some((s) => /^(\.|%2e){1,2}$/i.test(s));
  if (dotSegment) return 'client_id URL must not contain . or .. path segments';
  return undefined;
}

export function isCimdClientId(id: string, options: { allowLoopback?: boolean } = {}): boolean {
  return cimdClientIdProblem(id, options) === undefined;
}

/** CIMD_ALLOWED_HOSTS entries: `host`, `host:port`, or `*.domain` for any subdomain. */
export function cimdHostAllowed(url: URL, allowedHosts: readonly string[] | undefined): boolean {
  if (allowedHosts === undefined) return true;
  const hostname = url.hostname.toLowerCase();
  const host = url.host.toLowerCase();
  return allowedHosts.some((entry) =>
    entry.startsWith('*.') ? hostname.endsWith(entry.slice(1)) : entry === hostname || entry === host,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// §6.5 Special-use addresses

const IPV4_SPECIAL: readonly (readonly [string, number, string])[] = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'shared (CGNAT)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignment'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'], // includes the limited broadcast address
];

const IPV6_SPECIAL: readonly (readonly [string, number, string])[] = [
  ['fc00::', 7, 'unique-local (private)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
  ['100::', 64, 'discard-only'],
  ['64:ff9b:1::', 48, 'local-use NAT64'],
  ['2001:db8::', 32, 'documentation'],
  ['2001::', 23, 'IETF protocol assignment'], // Teredo, benchmarking, ORCHID…
  ['2002::', 16, '6to4'],
  ['3fff::', 20, 'documentation'],
];

function parseIPv4(address: string): number | undefined {
  if (!isIPv4(address)) return undefined;
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

/** Eight 16-bit groups, or undefined. A zone index (`%eth0`) is dropped. */
function parseIPv6(address: string): number[] | undefined {
  let a = address.toLowerCase().replace(/%.*$/, '');
  if (!isIPv6(a)) return undefined;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) {
    const v4 = parseIPv4(dotted[1]!);
    if (v4 === undefined) return undefined;
    a = `${a.slice(0, dotted.index)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head, tail] = a.split('::') as [string, string | undefined];
  const parts = (s: string) => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const h = parts(head);
  const t = tail === undefined ? [] : parts(tail);
  const fill = tail === undefined ? [] : new Array<number>(8 - h.length - t.length).fill(0);
  const groups = [...h, ...fill, ...t];
  return groups.length === 8 ? groups : undefined;
}

function inIPv4Prefix(ip: number, base: string, bits: number): boolean {
  const size = 2 ** (32 - bits);
  return Math.floor(ip / size) === Math.floor(parseIPv4(base)! / size);
}

function inIPv6Prefix(groups: number[], base: string, bits: number): boolean {
  const b = parseIPv6(base)!;
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    if ((groups[i]! & mask) !== (b[i]! & mask)) return false;
  }
  return true;
}

function ipv4Range(ip: number): string | undefined {
  return IPV4_SPECIAL.find(([base, bits]) => inIPv4Prefix(ip, base, bits))?.[2];
}

/**
 * The special-use range `address` falls in (RFC 6890, RFC 6761 §6.3, the IANA IPv4/IPv6 special-purpose
 * registries), or undefined when it is globally routable. IPv4 embedded in IPv6 (mapped, NAT64) is judged as
 * the IPv4 address it reaches; anything that is not an IP address at all counts as special-use.
 */
export function specialUseRange(address: string): string | undefined {
  const v4 = parseIPv4(address);
  if (v4 !== undefined) return ipv4Range(v4);
  const g = parseIPv6(address);
  if (g === undefined) return 'invalid';
  if (g.every((x) => x === 0)) return 'unspecified';
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return 'loopback';
  const embedded = g[6]! * 65536 + g[7]!;
  if (inIPv6Prefix(g, '::ffff:0:0', 96)) return ipv4Range(embedded); // IPv4-mapped
  if (inIPv6Prefix(g, '64:ff9b::', 96)) return ipv4Range(embedded); // NAT64 well-known prefix, RFC 6052
  const named = IPV6_SPECIAL.find(([base, bits]) => inIPv6Prefix(g, base, bits))?.[2];
  if (named) return named;
  // Only 2000::/3 is allocated as global unicast; the rest (IPv4-compatible ::/96 included) is reserved.
  return inIPv6Prefix(g, '2000::', 3) ? undefined : 'reserved';
}

/** Why connecting to `address` is refused, or undefined when it is allowed. */
export function addressProblem(address: string, allowLoopback: boolean): string | undefined {
  const range = specialUseRange(address);
  if (range === undefined || (range === 'loopback' && allowLoopback)) return undefined;
  return range;
}

function canonicalAddress(address: string): string {
  const g = parseIPv6(address);
  if (g === undefined) return address;
  // An IPv4 peer on a dual-stack socket reports itself as ::ffff:a.b.c.d.
  if (inIPv6Prefix(g, '::ffff:0:0', 96)) return `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  return g.map((x) => x.toString(16)).join(':');
}

// ---------------------------------------------------------------------------------------------------------------
// §4 Fetching

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has. Injected in tests so no query or packet leaves the machine. */
export type LookupHost = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemLookup: LookupHost = async (hostname) => {
  const answers = await dnsLookup(hostname, { all: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export type RequestFunction = (
  options: https.RequestOptions,
  callback: (res: IncomingMessage) => void,
) => ClientRequest;

export interface CimdFetchOptions {
  /** CIMD_ALLOW_LOOPBACK: loopback addresses (and http on a loopback host) allowed. */
  allowLoopback: boolean;
  /** CIMD_ALLOWED_HOSTS; undefined allows every host. */
  allowedHosts?: readonly string[] | undefined;
  lookup?: LookupHost;
  /** One limit for resolution, connection, TLS, headers and body. */
  timeoutMs?: number;
  maxBytes?: number;
  /** Trusted CAs for this fetch (in-process tests); a spawned server uses NODE_EXTRA_CA_CERTS instead. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Sends the request; defaults to node:https/node:http. Tests inject one that fails if it is ever called. */
  request?: RequestFunction;
}

export interface FetchedDocument {
  document: unknown;
  /** Seconds the document stays fresh, within [CIMD_MIN_FRESHNESS, CIMD_MAX_FRESHNESS]. */
  freshFor: number;
}

/** Fetches the document behind a CIMD client_id; throws CimdError. Validation is validateCimdDocument's job. */
export async function fetchCimdDocument(
  clientId: string,
  now: Date,
  options: CimdFetchOptions,
): Promise<FetchedDocument> {
  const problem = cimdClientIdProblem(clientId, { allowLoopback: options.allowLoopback });
  if (problem) throw new CimdError(problem);
  const url = new URL(clientId);
  if (!cimdHostAllowed(url, options.allowedHosts)) {
    throw new CimdError("client_id host is not in this server's allowed CIMD hosts");
  }
  const timeoutMs = options.timeoutMs ?? CIMD_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const addresses = await withTimeout(resolveHost(url, options), timeoutMs);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (url.protocol === 'http:' && !addresses.every((a) => specialUseRange(a.address) === 'loopback')) {
    throw new CimdError('client_id URL must use https', { detail: `http host ${host} is not loopback` });
  }
  return await send(url, host, addresses, now, options, Math.max(1, deadline - Date.now()));
}

async function resolveHost(url: URL, options: CimdFetchOptions): Promise<ResolvedAddress[]> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: ResolvedAddress[];
  if (isIPv4(host) || isIPv6(host)) {
    addresses = [{ address: host, family: isIPv4(host) ? 4 : 6 }];
  } else {
    try {
      addresses = await (options.lookup ?? systemLookup)(host);
    } catch (err) {
      throw new CimdError('client_id host could not be resolved', {
        staleUsable: true,
        detail: (err as NodeJS.ErrnoException).code ?? (err as Error).message,
      });
    }
    if (addresses.length === 0) {
      throw new CimdError('client_id host could not be resolved', {
        staleUsable: true,
        detail: 'no addresses',
      });
    }
  }
  // Refuse when any address is special-use: such a name is misconfigured at best, and an attack at worst.
  for (const a of addresses) {
    const range = addressProblem(a.address, options.allowLoopback);
    if (range) {
      throw new CimdError('client_id host resolves to a special-use address', {
        detail: `${host} resolves to ${a.address} (${range})`,
      });
    }
  }
  return addresses;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const timedOut = () => new CimdError('fetching the document timed out', { staleUsable: true });

function send(
  url: URL,
  host: string,
  addresses: ResolvedAddress[],
  now: Date,
  options: CimdFetchOptions,
  timeoutMs: number,
): Promise<FetchedDocument> {
  const maxBytes = options.maxBytes ?? CIMD_MAX_BYTES;
  const vetted = new Set(addresses.map((a) => canonicalAddress(a.address)));
  // The socket connects to the addresses vetted above and to nothing else (DNS rebinding).
  const pinnedLookup: LookupFunction = (_hostname, opts, callback) => {
    const family = opts.family === 'IPv4' ? 4 : opts.family === 'IPv6' ? 6 : opts.family;
    const usable = addresses.filter((a) => !family || a.family === family);
    const list = usable.length > 0 ? usable : addresses;
    if (opts.all) callback(null, list);
    else callback(null, list[0]!.address, list[0]!.family);
  };
  const request: RequestFunction =
    options.request ?? (url.protocol === 'https:' ? https.request : http.request);

  return new Promise<FetchedDocument>((resolve, reject) => {
    let settled = false;
    const fail = (err: CimdError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(timedOut()), timeoutMs);

    const req = request(
      {
        protocol: url.protocol,
        host,
        port: url.port || (url.protocol === 'https:' ? 443 : 80),
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: {
          accept: 'application/json',
          'accept-encoding': 'identity',
          'user-agent': 'Latchkey (OAuth client metadata fetch)',
        },
        lookup: pinnedLookup,
        agent: false,
        ...(options.ca !== undefined && { ca: options.ca }),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          res.resume();
          const redirect = status >= 300 && status < 400;
          return fail(
            new CimdError(
              redirect ? `redirects are not followed (HTTP ${status})` : `the server answered HTTP ${status}`,
              { staleUsable: status >= 500 },
            ),
          );
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBytes) {
          return fail(new CimdError(`the document is larger than ${maxBytes} bytes`));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) return fail(new CimdError(`the document is larger than ${maxBytes} bytes`));
          chunks.push(chunk);
        });
        res.on('error', (err) => fail(transportError(err)));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          let document: unknown;
          try {
            document = JSON.parse(
              Buffer.concat(chunks)
                .toString('utf8')
                .replace(/^\uFEFF/, ''),
            );
          } catch {
            return reject(new CimdError('the document is not valid JSON'));
          }
          resolve({ document, freshFor: freshnessLifetime(res.headers, now) });
        });
      },
    );
    req.on('socket', (socket) => {
      socket.once('connect', () => {
        // Defence in depth: the peer must be one of the vetted addresses.
        if (!vetted.has(canonicalAddress(socket.remoteAddress ?? ''))) {
          fail(
            new CimdError('client_id host resolves to a special-use address', { detail: 'peer mismatch' }),
          );
        }
      });
    });
    req.on('error', (err) => fail(err instanceof CimdError ? err : transportError(err)));
    req.end();
  });
}

function transportError(err: Error): CimdError {
  return new CimdError('the document could not be fetched', {
    staleUsable: true,
    detail: (err as NodeJS.ErrnoException).code ?? err.message,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// §4.4 Caching

/**
 * Seconds a response stays fresh (RFC 9111 §4.2.1): Cache-Control max-age, else Expires − Date, less Age;
 * no-store and no-cache give the minimum; no caching information gives CIMD_DEFAULT_FRESHNESS. Always clamped
 * to [CIMD_MIN_FRESHNESS, CIMD_MAX_FRESHNESS].
 */
export function freshnessLifetime(headers: IncomingHttpHeaders, now: Date): number {
  const directives = new Map<string, string>();
  for (const part of (headers['cache-control'] ?? '').split(',')) {
    const [name, value = ''] = part.split('=', 2).map((s) => s.trim());
    if (name && !directives.has(name.toLowerCase())) {
      directives.set(name.toLowerCase(), value.replace(/^"(.*)"$/, '$1'));
    }
  }
  let lifetime: number;
  const maxAge = directives.get('max-age');
  if (directives.has('no-store') || directives.has('no-cache')) {
    lifetime = 0;
  } else if (maxAge !== undefined) {
    lifetime = /^\d+$/.test(maxAge) ? Number(maxAge) : 0; // RFC 9111 §4.2.1: invalid → stale
  } else if (headers.expires !== undefined) {
    const expires = Date.parse(headers.expires);
    const date = headers.date !== undefined ? Date.parse(headers.date) : Number.NaN;
    const base = Number.isNaN(date) ? now.getTime() : date;
    lifetime = Number.isNaN(expires) ? 0 : (expires - base) / 1000;
  } else {
    lifetime = CIMD_DEFAULT_FRESHNESS;
  }
  const age = Number(headers.age);
  if (Number.isFinite(age) && age > 0) lifetime -= age;
  return Math.min(CIMD_MAX_FRESHNESS, Math.max(CIMD_MIN_FRESHNESS, Math.floor(lifetime)));
}

// ---------------------------------------------------------------------------------------------------------------
// §4.1, §6.1 Document validation

const SHARED_SECRET_METHODS = new Set(['client_secret_post', 'client_secret_basic', 'client_secret_jwt']);

/** Validates a fetched document for `clientId`; throws CimdError. */
export function validateCimdDocument(
  clientId: string,
  document: unknown,
  policy: Omit<ClientMetadataPolicy, 'source'>,
): ClientMetadata {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new CimdError('the document must be a JSON object');
  }
  const d = document as Record<string, unknown>;
  // §4.1: the client_id property MUST match the URL, by simple string comparison.
  if (d.client_id !== clientId) throw new CimdError("the document's client_id does not match its URL");
  // §4.1: no symmetric secrets: a document anyone can read cannot hold one.
  if ('client_secret' in d || 'client_secret_expires_at' in d) {
    throw new CimdError('the document must not contain client_secret or client_secret_expires_at');
  }
  const method = d.token_endpoint_auth_method;
  if (typeof method === 'string' && SHARED_SECRET_METHODS.has(method)) {
    throw new CimdError('the document must not use a shared-secret token_endpoint_auth_method');
  }
  // We authenticate no client by key (private_key_jwt, tls_client_auth…), so a document asking for it is unusable.
  if (method !== undefined && method !== null && method !== 'none') {
    throw new CimdError('token_endpoint_auth_method must be none');
  }
  try {
    return validateClientMetadata(d, { ...policy, source: 'cimd' });
  } catch (err) {
    if (err instanceof OAuthError) throw new CimdError(err.description);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The database-backed cache

export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

export interface CimdCacheOptions extends Omit<CimdFetchOptions, 'allowLoopback' | 'allowedHosts'> {
  store: ClientStore;
  clock: Clock;
  config: Pick<Config, 'cimdAllowLoopback' | 'cimdAllowedHosts' | 'allowedRedirectUriPatterns' | 'scopes'>;
  /** Seconds past freshness a document serves while its host fails; default CIMD_STALE_IF_ERROR. */
  staleIfError?: number;
  log?: WarnLogger | undefined;
}

export interface CimdCache {
  /**
   * The client for a CIMD client_id: the cached row while fresh, else a new fetch (stored on success). A failed
   * fetch is never stored; the cached row still serves if the host is failing and it went stale recently.
   */
  resolve(clientId: string, cached: Client | null, log?: WarnLogger): Promise<Client>;
}

export function createCimdCache(options: CimdCacheOptions): CimdCache {
  const { store, clock, config, staleIfError = CIMD_STALE_IF_ERROR, log: defaultLog, ...transport } = options;
  const fetchOptions: CimdFetchOptions = {
    ...transport,
    allowLoopback: config.cimdAllowLoopback,
    allowedHosts: config.cimdAllowedHosts,
  };
  // Concurrent requests for one client_id share one fetch.
  const inFlight = new Map<string, Promise<Client>>();

  async function refresh(
    clientId: string,
    cached: Client | null,
    log: WarnLogger | undefined,
  ): Promise<Client> {
    const now = clock.now();
    try {
      const fetched = await fetchCimdDocument(clientId, now, fetchOptions);
      const metadata = validateCimdDocument(clientId, fetched.document, {
        supportedScopes: config.scopes,
        allowedRedirectUriPatterns: config.allowedRedirectUriPatterns,
      });
      return await store.upsertCimd({
        clientId,
        kind: 'CIMD',
        name: metadata.name,
        redirectUris: metadata.redirectUris,
        grantTypes: metadata.grantTypes,
        responseTypes: metadata.responseTypes,
        tokenEndpointAuthMethod: 'none',
        secretHash: null,
        scope: metadata.scope ?? null,
        clientUri: metadata.clientUri ?? null,
        logoUri: metadata.logoUri ?? null,
        // Validated above: a JSON object, without secrets.
        metadata: fetched.document as Prisma.InputJsonValue,
        fetchedAt: now,
        freshUntil: addSeconds(now, fetched.freshFor),
      });
    } catch (err) {
      if (!(err instanceof CimdError)) throw err;
      const host = new URL(clientId).host;
      const freshUntil = cached?.freshUntil?.getTime();
      if (err.staleUsable && freshUntil !== undefined && now.getTime() <= freshUntil + staleIfError * 1000) {
        log?.warn(
          { clientId, host, reason: err.description, detail: err.detail },
          'client metadata document host is failing; serving the cached document (stale-if-error)',
        );
        return cached!;
      }
      log?.warn(
        { clientId, host, reason: err.description, detail: err.detail },
        'client metadata document refused',
      );
      throw err;
    }
  }

  return {
    async resolve(clientId, cached, log = defaultLog) {
      const problem = cimdClientIdProblem(clientId, { allowLoopback: config.cimdAllowLoopback });
      if (problem) throw new CimdError(problem);
      // The operator's host policy applies to cached documents too, so tightening it takes effect at once.
      if (!cimdHostAllowed(new URL(clientId), config.cimdAllowedHosts)) {
        throw new CimdError("client_id host is not in this server's allowed CIMD hosts");
      }
      if (cached?.freshUntil && cached.freshUntil.getTime() > clock.now().getTime()) return cached;
      const pending = inFlight.get(clientId);
      if (pending) return pending;
      const p = refresh(clientId, cached, log).finally(() => inFlight.delete(clientId));
      inFlight.set(clientId, p);
      return p;
    },
  };
}

/** Says loudly at start-up that CIMD_ALLOW_LOOPBACK weakens the SSRF guard; call it from buildApp. */
export function warnIfCimdLoopbackAllowed(config: Pick<Config, 'cimdAllowLoopback'>, log: WarnLogger): void {
  if (!config.cimdAllowLoopback) return;
  log.warn(
    { cimdAllowLoopback: true },
    'CIMD_ALLOW_LOOPBACK is on: client metadata documents may be fetched from loopback addresses, over http too. ' +
      'This is for local development and tests only; never enable it in production.',
  );
}
