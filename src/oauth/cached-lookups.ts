// Resource servers by client_id, for the callers of /introspect and of token exchange at /token: kept in memory until
// the next change notification (change-cache.ts). Rotating a secret, updating or deleting a resource server notifies
// (store/resource-servers.ts), so the very next call reads the new row. Only rows are kept, never a verdict: the
// presented secret is checked against the row's SHA-256 hash, in constant time, on every call. Concurrent misses
// share one read (ChangeCache#lookup).

import type { ResourceServer } from '../generated/prisma/client.ts';
import type { Clock } from '../lib/clock.ts';
import type { ResourceServerStore } from '../store/resource-servers.ts';
import { ChangeCache, type ChangeSource } from './change-cache.ts';

export interface CachedResourceServers extends Pick<ResourceServerStore, 'findByClientId'> {
  /** The row if the cache holds it now, without waiting: /introspect's hot path (an await costs it a microtask). */
  cached(clientId: string): ResourceServer | undefined;
}

export function cachedResourceServers(
  store: Pick<ResourceServerStore, 'findByClientId'>,
  changes: ChangeSource,
  clock: Clock,
): CachedResourceServers {
  const cache = new ChangeCache<ResourceServer>(changes, clock, { maxEntries: 10_000, ttlSeconds: 60 });
  return {
    findByClientId: (clientId) => cache.lookup(clientId, (id) => store.findByClientId(id)),
    cached: (clientId) => cache.get(clientId),
  };
}
