// Redirect URI rules.
// - Registration: absolute https URIs, or http on a loopback host (RFC 8252 §7.3, §8.3); no fragment
//   (RFC 6749 §3.1.2), no wildcards, no userinfo.
// - Matching: exact string comparison (OAuth 2.1 §4.1.1 / RFC 9700 §4.1.3), except that for loopback
//   redirect URIs the port is ignored (RFC 8252 §7.3): native apps bind an ephemeral port at run time.

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname.toLowerCase());
}

/** Why a redirect URI may not be registered, or undefined when it may. */
export function redirectUriProblem(uri: string): string | undefined {
  if (typeof uri !== 'string' || uri.length === 0) return 'redirect URI must be a non-empty string';
  if (uri.length > 2000) return 'redirect URI is too long';
  if (uri.includes('*')) return 'redirect URI must not contain wildcards';
  if (uri.includes('#')) return 'redirect URI must not contain a fragment';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'redirect URI must be an absolute URI';
  }
  if (url.username || url.password) return 'redirect URI must not contain credentials';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') {
    return isLoopbackHost(url.hostname)
      ? undefined
      : 'redirect URI must use https (http is allowed only on loopback)';
  }
  return 'redirect URI must use https (or http on loopback)';
}

/** The registered URI the requested one matches, or undefined. */
export function matchRedirectUri(requested: string, registered: readonly string[]): string | undefined {
  if (registered.includes(requested)) return requested;
  let req: URL;
  try {
    req = new URL(requested);
  } catch {
    return undefined;
  }
  if (req.protocol !== 'http:' || !isLoopbackHost(req.hostname) || requested.includes('#')) return undefined;
  for (const candidate of registered) {
    let reg: URL;
    try {
      reg = new URL(candidate);
    } catch {
      continue;
    }
    if (reg.protocol !== 'http:' || !isLoopbackHost(reg.hostname)) continue;
    // Same everything but the port: compare the URIs with both ports removed.
    if (withoutPort(requested) === withoutPort(candidate)) return candidate;
  }
  return undefined;
}

function withoutPort(uri: string): string {
  // Remove an explicit port from the authority only, preserving everything else byte for byte.
  return uri.replace(/^(http:\/\/(?:\[::1\]|[^/:?#]+)):\d+/i, '$1');
}
