// Resource indicators (RFC 8707). A token is bound to exactly one registered resource server, its audience.
import type { ResourceServer } from '../generated/prisma/client.ts';
import { normalizeResource } from '../resource-server/resource.ts';
import type { ResourceServerStore } from '../store/resource-servers.ts';
import { invalidTarget } from './errors.ts';
import type { Params } from './params.ts';

// One definition of the canonical form, shared with the resource-server kit (which has no server dependencies).
export { normalizeResource };

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

/**
 * The id of the registered resource server a token request's `resource` names: undefined when the request names
 * none, null when none matches (malformed or unknown). At /token the only acceptable resource is the one the grant
 * is bound to, so an unknown resource is answered exactly as another registered one is (RFC 8707 §2.2
 * invalid_target): the answer reveals nothing about which resource servers exist, and a failed code exchange spends
 * the code either way.
 */
export async function requestedResourceId(
  params: Params,
  store: ResourceServerStore,
): Promise<string | null | undefined> {
  const requested = params.get('resource');
  if (requested === undefined) return undefined;
  const canonical = normalizeResource(requested);
  if (!canonical) return null;
  return (await store.findByUri(canonical))?.id ?? null;
}
