// OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that tells an MCP client which authorization
// server protects this resource, and where that document lives.
import { requireResource } from './resource.ts';

/** RFC 9728 §3: the registered well-known URI suffix. */
export const PROTECTED_RESOURCE_WELL_KNOWN = '/.well-known/oauth-protected-resource';

export interface ProtectedResourceMetadataOptions {
  /** The canonical MCP endpoint URL, exactly as clients use it (e.g. `https://mcp.example.com/mcp`). */
  resource: string;
  /** Latchkey's issuer identifier (its `ISSUER`), copied verbatim: clients compare it as a string. */
  issuer: string;
  scopesSupported?: string[];
  resourceName?: string;
  resourceDocumentation?: string;
}

/** The wire document (RFC 9728 §2), snake_case as on the wire. */
export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  scopes_supported?: string[];
  bearer_methods_supported: string[];
  resource_name?: string;
  resource_documentation?: string;
}

export function createProtectedResourceMetadata(
  options: ProtectedResourceMetadataOptions,
): ProtectedResourceMetadata {
  const resource = requireResource(options.resource, 'resource');
  if (!URL.canParse(options.issuer)) throw new TypeError(`issuer must be an absolute URL: ${options.issuer}`);
  const doc: ProtectedResourceMetadata = {
    resource,
    authorization_servers: [options.issuer],
    ...(options.scopesSupported?.length ? { scopes_supported: [...options.scopesSupported] } : {}),
    // The kit reads tokens only from the Authorization header (RFC 6750 §2.1).
    bearer_methods_supported: ['header'],
  };
  if (options.resourceName) doc.resource_name = options.resourceName;
  if (options.resourceDocumentation) doc.resource_documentation = options.resourceDocumentation;
  return doc;
}

/**
 * The paths at which the metadata is served: the path-suffixed location (RFC 9728 §3.1: the well-known suffix
 * goes between host and path) and the root location, which clients (Claude, the MCP SDK) fall back to.
 */
export function protectedResourceMetadataPaths(resource: string): string[] {
  const { pathname } = new URL(requireResource(resource, 'resource'));
  return pathname === '/'
    ? [PROTECTED_RESOURCE_WELL_KNOWN]
    : [PROTECTED_RESOURCE_WELL_KNOWN + pathname, PROTECTED_RESOURCE_WELL_KNOWN];
}

/** The absolute, path-suffixed metadata URL for a resource (RFC 9728 §3.1), for `resource_metadata`. */
export function protectedResourceMetadataUrl(resource: string): string {
  const url = new URL(requireResource(resource, 'resource'));
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.origin}${PROTECTED_RESOURCE_WELL_KNOWN}${path}${url.search}`;
}

/** Headers for a metadata response: public, briefly cacheable, readable cross-origin by browser-based clients. */
export const METADATA_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'public, max-age=300',
  'access-control-allow-origin': '*',
});

/** The CORS preflight answer: browser clients send `MCP-Protocol-Version`, which is not a simple header. */
export const METADATA_PREFLIGHT_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-allow-headers': '*',
  'access-control-max-age': '86400',
});
