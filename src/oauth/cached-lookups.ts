// Resource servers by client_id, for the callers of /introspect and of token exchange at /token: kept in memory until
// the next change notification (change-cache.ts). Rotating a secret, updating or deleting a resource server notifies
// (store/resource-servers.ts), so the very next call reads the new row. Only rows are kept, never a verdict: the
// presented secret is checked against the row's SHA-256 hash, in constant time, on every call.
import type { AppContext } from '../context.ts';
import type { ResourceServer } from '../generated/prisma/client.ts';
import type { ResourceServerStore } from '../store/resource-servers.ts';
import { ChangeCache, cachedLookup } from './change-cache.ts';

export function cachedResourceServers(
  ctx: Pick<AppContext, 'changes' | 'clock' | 'stores'>,
): ResourceServerStore {
  const cache = new ChangeCache<ResourceServer>(ctx.changes, ctx.clock, { maxEntries: 10_000, ttlSeconds: 60 });
  const store = ctx.stores.resourceServers;
  return { ...store, findByClientId: (clientId) => cachedLookup(cache, clientId, (id) => store.findByClientId(id)) };
}
