// Resource indicators (RFC 8707). A token is bound to exactly one registered resource server, its audience.
import type { ResourceServer } from '../generated/prisma/client.ts';
import type { ResourceServerStore } from '../store/resource-servers.ts';
import { invalidTarget } from './errors.ts';

/**
 * The canonical form of a resource URI: lower-case scheme and host, no default port, no fragment, and a bare
 * host's trailing slash removed (`https://mcp.example.com/` ≡ `https://mcp.example.com`). Undefined when the
 * value is not an absolute URI usable as a resource (RFC 8707 §2: absolute, no fragment).
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
  let s = url.href;
  if (url.pathname === '/' && !url.search) s = s.slice(0, -1);
  return s;
}

/**
 * Finds the resource server a request is for. With `requested` values: exactly one, registered, else
 * invalid_target. Without: the only registered resource server, else invalid_target.
 */
export async function resolveResource(
  requested: readonly string[],
  store: ResourceServerStore,
): Promise<ResourceServer> {
  if (requested.length > 1) throw invalidTarget('only one resource may be requested');
  if (requested.length === 0) {
    const all = await store.list();
    if (all.length === 1) return all[0]!;
    throw invalidTarget(
      all.length === 0
        ? 'no resource server is registered'
        : 'resource is required when several are registered',
    );
  }
  const canonical = normalizeResource(requested[0]!);
  if (!canonical) throw invalidTarget('resource must be an absolute URI without a fragment');
  const found = await store.findByUri(canonical);
  if (!found) throw invalidTarget('unknown resource');
  return found;
}
