// Resource identifiers (RFC 8707 §2) and how two of them are compared. Latchkey stores each resource server's
// URI in this canonical form and puts it in `aud`, so the kit must agree with src/oauth/resources.ts.

/**
 * The canonical form of a resource URI: lower-case scheme and host, no default port, no fragment, and a bare
 * host's trailing slash removed (`https://mcp.example.com/` ≡ `https://mcp.example.com`). A path keeps its
 * trailing slash: `/mcp` and `/mcp/` are different resources. Undefined when the value is not an absolute
 * http(s) URI without userinfo or fragment.
 */
export function normalizeResource(value: string): string | undefined {
  if (value.includes('#')) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username || url.password) return undefined;
  // URL already lower-cases scheme and host and drops default ports.
  const href = url.href;
  // Only the root path's slash goes; an empty query (`https://a.example/?`) is kept (RFC 3986 §6.2.3).
  return url.pathname === '/' && href.endsWith('/') ? href.slice(0, -1) : href;
}

/** True when `audience` (a string or list, RFC 7662 §2.2 `aud`) names `resource` after normalisation. */
export function audienceIncludes(audience: string | readonly string[], resource: string): boolean {
  const want = normalizeResource(resource);
  if (want === undefined) return false;
  const list = typeof audience === 'string' ? [audience] : audience;
  return list.some((a) => normalizeResource(a) === want);
}

/** Throws at start, naming the option, when a configured resource is not a usable resource URI. */
export function requireResource(value: string, option: string): string {
  if (normalizeResource(value) === undefined) {
    throw new TypeError(`${option} must be an absolute http(s) URL without userinfo or fragment: ${value}`);
  }
  return value;
}
