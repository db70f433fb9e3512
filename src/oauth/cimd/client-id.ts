// Which client_ids name a Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document-01 §3), and
// whether this server will fetch them: the URL rules of §3 (https, a path, no userinfo, fragment or dot segments;
// http only on a loopback host under CIMD_ALLOW_LOOPBACK), then the operator's CIMD_ALLOWED_HOSTS. These are the
// first of the SSRF guards (§6.5); the addresses the host resolves to are judged in addresses.ts.
import type { OAuthError } from '../errors.ts';
import { isLoopbackHost } from '../redirect-uri.ts';
import { CimdError } from './error.ts';

const MAX_CLIENT_ID_LENGTH = 2000;

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

export interface CimdUrlPolicy {
  /** CIMD_ALLOW_LOOPBACK: loopback addresses (and http on a loopback host) allowed. */
  allowLoopback: boolean;
  /** CIMD_ALLOWED_HOSTS; undefined allows every host. */
  allowedHosts?: readonly string[] | undefined;
}

declare const checked: unique symbol;
/** A client_id URL that passed checkCimdClientId: only such a URL is fetched. */
export type CheckedCimdUrl = URL & { readonly [checked]: true };

/**
 * The URL a CIMD client_id names, once §3's rules and CIMD_ALLOWED_HOSTS allow it; throws otherwise. A §3 problem
 * becomes `urlProblem(problem)`, by default a CimdError.
 */
export function checkCimdClientId(
  id: string,
  policy: CimdUrlPolicy,
  urlProblem: (problem: string) => OAuthError = (problem) => new CimdError(problem),
): CheckedCimdUrl {
  const problem = cimdClientIdProblem(id, { allowLoopback: policy.allowLoopback });
  if (problem) throw urlProblem(problem);
  const url = new URL(id);
  if (!cimdHostAllowed(url, policy.allowedHosts)) {
    throw new CimdError("client_id host is not in this server's allowed CIMD hosts");
  }
  return url as CheckedCimdUrl;
}
