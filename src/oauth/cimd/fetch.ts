// The pinned fetch of a Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document-01 §4, with the
// SSRF guards of §6.5 and the size limit of §6.6). Once the client_id URL has passed client-id.ts:
// 1. The addresses: the host is resolved once, by us; if any address is special-use (addresses.ts) the fetch is
//    refused before any connection. Under CIMD_ALLOW_LOOPBACK loopback, and only loopback, is allowed, and http
//    only when every address is loopback.
// 2. The connection: the request's `lookup` hands the socket exactly the vetted addresses, so a second DNS answer
//    (rebinding) is never consulted; the connected peer is checked against them once more.
// 3. The response: no redirects followed, only 200, at most 5 KB (aborted while streaming), one time limit for
//    the whole exchange.
import { lookup as dnsLookup } from 'node:dns/promises';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIPv4, isIPv6, type LookupFunction } from 'node:net';
import type { Config } from '../../config.ts';
import { addressProblem, canonicalAddress, specialUseRange } from './addresses.ts';
import { type CheckedCimdUrl, type CimdUrlPolicy, checkCimdClientId } from './client-id.ts';
import { CimdError, type WarnLogger } from './error.ts';
import { freshnessLifetime } from './freshness.ts';

export const CIMD_MAX_BYTES = 5 * 1024; // §6.6 suggests 5 kilobytes
export const CIMD_TIMEOUT_MS = 5000;

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

export interface CimdFetchOptions extends CimdUrlPolicy {
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

/**
 * Checks a client_id (client-id.ts) and fetches the document behind it; throws CimdError. Validation is
 * validateCimdDocument's job.
 */
export async function fetchCimdDocument(
  clientId: string,
  now: Date,
  options: CimdFetchOptions,
): Promise<FetchedDocument> {
  return fetchCheckedCimdDocument(checkCimdClientId(clientId, options), now, options);
}

/** Fetches the document behind a client_id URL that already passed checkCimdClientId; throws CimdError. */
export async function fetchCheckedCimdDocument(
  url: CheckedCimdUrl,
  now: Date,
  options: CimdFetchOptions,
): Promise<FetchedDocument> {
  const timeoutMs = options.timeoutMs ?? CIMD_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const addresses = await withTimeout(resolveHost(host, options), timeoutMs);
  if (url.protocol === 'http:' && !addresses.every((a) => specialUseRange(a.address) === 'loopback')) {
    throw new CimdError('client_id URL must use https', { detail: `http host ${host} is not loopback` });
  }
  return await send(url, host, addresses, now, options, Math.max(1, deadline - Date.now()));
}

async function resolveHost(host: string, options: CimdFetchOptions): Promise<ResolvedAddress[]> {
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

/** Says loudly at start-up that CIMD_ALLOW_LOOPBACK weakens the SSRF guard; call it from buildApp. */
export function warnIfCimdLoopbackAllowed(config: Pick<Config, 'cimdAllowLoopback'>, log: WarnLogger): void {
  if (!config.cimdAllowLoopback) return;
  log.warn(
    { cimdAllowLoopback: true },
    'CIMD_ALLOW_LOOPBACK is on: client metadata documents may be fetched from loopback addresses, over http too. ' +
      'This is for local development and tests only; never enable it in production.',
  );
}
