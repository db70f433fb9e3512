// Every HTTP call to an upstream provider goes through here: a time limit (UPSTREAM_HTTP_TIMEOUT), no redirects
// followed, and a 64 KiB cap on the response body. Failures to reach the provider become UpstreamUnreachable, so
// callers tell "down" (503/502 "not responding", nothing revoked) apart from an answer they do not like.
import * as oauth from 'oauth4webapi';
import { readCapped } from '../lib/read-capped.ts';

/** What buildApp's `upstreamFetch` may replace (tests route provider calls to loopback stand-ins). */
export type UpstreamFetch = (url: string, init: RequestInit) => Promise<Response>;

export const UPSTREAM_MAX_BYTES = 64 * 1024;

/** The provider could not be reached, did not answer in time, or sent more than the cap. */
export class UpstreamUnreachable extends Error {
  constructor(
    readonly reason: 'network' | 'timeout' | 'too_large',
    options?: { cause?: unknown },
  ) {
    super(
      `upstream ${reason === 'too_large' ? 'response too large' : reason === 'timeout' ? 'timed out' : 'unreachable'}`,
      options,
    );
    this.name = 'UpstreamUnreachable';
  }
}

export type LimitedFetch = (url: string, init?: RequestInit) => Promise<Response>;

/** The fetch every provider uses: time limit for the whole exchange (headers and body), manual redirects, size cap. */
export function limitedFetch(
  base: UpstreamFetch,
  timeoutSeconds: number,
  maxBytes = UPSTREAM_MAX_BYTES,
): LimitedFetch {
  return async (url, init = {}) => {
    const timeout = AbortSignal.timeout(timeoutSeconds * 1000);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    try {
      const res = await base(url, { ...init, redirect: 'manual', signal });
      const body = await readCapped(res, maxBytes);
      if (!body) throw new UpstreamUnreachable('too_large');
      const empty = res.status === 204 || res.status === 304 || init.method === 'HEAD';
      return new Response(empty ? null : body, {
        status: res.status,
        statusText: res.statusText,
        headers: res.headers,
      });
    } catch (err) {
      if (err instanceof UpstreamUnreachable) throw err;
      throw new UpstreamUnreachable(timeout.aborted ? 'timeout' : 'network', { cause: err });
    }
  };
}

/** Options for every oauth4webapi request: our fetch, and plain http only where the configuration allowed it. */
export function requestOptions(fetch: LimitedFetch, allowInsecure: boolean) {
  return {
    [oauth.customFetch]: fetch as unknown as typeof globalThis.fetch,
    ...(allowInsecure ? { [oauth.allowInsecureRequests]: true } : {}),
  };
}

export type JsonAnswer =
  | { kind: 'ok'; body: unknown }
  | { kind: 'status'; status: number }
  | { kind: 'unavailable'; reason: string };

/** A GET of a JSON API with a bearer token: 2xx JSON, another status, or unreachable (5xx counts as unreachable). */
export async function getJson(
  fetch: LimitedFetch,
  url: string,
  headers: Record<string, string>,
): Promise<JsonAnswer> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'GET', headers });
  } catch (err) {
    return { kind: 'unavailable', reason: (err as Error).message };
  }
  if (res.status >= 500 || res.status === 429) return { kind: 'unavailable', reason: `status ${res.status}` };
  if (res.status < 200 || res.status >= 300) return { kind: 'status', status: res.status };
  try {
    return { kind: 'ok', body: await res.json() };
  } catch {
    return { kind: 'status', status: 502 };
  }
}

/** Upstream text for the logs: at most 200 characters, control characters removed. Never for pages. */
export function loggable(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point.
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').slice(0, 200);
}
