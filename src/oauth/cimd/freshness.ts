// How long a fetched Client ID Metadata Document stays fresh (draft-ietf-oauth-client-id-metadata-document-01
// §4.4: the server caches per HTTP caching, RFC 9111 §4.2), bounded so one sign-in never refetches and no
// document outlives a day.
import type { IncomingHttpHeaders } from 'node:http';

/** Freshness bounds (seconds): at least a minute so one sign-in does not refetch, at most a day. */
export const CIMD_MIN_FRESHNESS = 60;
export const CIMD_MAX_FRESHNESS = 86400;
/** Freshness when the response says nothing about caching. */
export const CIMD_DEFAULT_FRESHNESS = 300;

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
