// Client lookup: turns a client_id into a client, or an invalid_client error that says why.
// Registered clients (dynamic and operator) are read from the database. URL client_ids are Client ID Metadata
// Documents (draft-ietf-oauth-client-id-metadata-document), fetched and cached by the CIMD module.
import { loadConfig } from '../config.ts';
import type { Client } from '../generated/prisma/client.ts';
import { type Clock, systemClock } from '../lib/clock.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Stores } from '../store/index.ts';
import { ChangeCache, type ChangeSource } from './change-cache.ts';
import {
  type CimdCacheOptions,
  type CimdFetchOptions,
  createCimdCache,
  looksLikeUrlClientId,
  type WarnLogger,
} from './cimd/index.ts';
import { invalidClient } from './errors.ts';

const CLIENT_CACHE = { maxEntries: 10_000, ttlSeconds: 60 };

export interface ClientResolver {
  /**
   * The client for `clientId`; throws an invalid_client OAuthError when there is none or it is unusable.
   * `log` (e.g. the request's logger) receives warnings about CIMD fetches.
   */
  resolve(clientId: string, log?: WarnLogger): Promise<Client>;
}

export interface ClientResolverOptions {
  /** Defaults to the operator defaults (loadConfig({})): no loopback documents, no host allow-list. */
  config?: CimdCacheOptions['config'];
  clock?: Clock;
  /** Resolver, transport, limits and trusted CAs for CIMD fetches (tests). */
  cimd?: Omit<CimdFetchOptions, 'allowLoopback' | 'allowedHosts'> & { staleIfError?: number };
  log?: WarnLogger;
  /** Counts CIMD fetches and first registrations. */
  metrics?: Pick<Metrics, 'cimdFetch' | 'registration'>;
  /** Change notifications: with them, resolved clients are kept in memory until the next change (change-cache.ts). */
  changes?: ChangeSource;
  /** Records CIMD fetch outcomes in client traces. */
  trace?: CimdCacheOptions['trace'];
}

export function createClientResolver(stores: Stores, options: ClientResolverOptions = {}): ClientResolver {
  const config = options.config ?? loadConfig({});
  const cimd = createCimdCache({
    ...options.cimd,
    store: stores.clients,
    clock: options.clock ?? systemClock,
    config,
    log: options.log,
    metrics: options.metrics,
    trace: options.trace,
  });
  async function load(clientId: string, log: WarnLogger | undefined): Promise<Client> {
    const client = await stores.clients.findByClientId(clientId);
    // A registered client wins even when its client_id looks like a URL (an operator may choose one).
    if (client && client.kind !== 'CIMD') return client;
    if (client) return cimd.resolve(clientId, client, log);
    if (!looksLikeUrlClientId(clientId)) throw invalidClient('unknown client_id');
    // The CIMD cache checks the client_id URL rules and host allow-list, once, cached client or not.
    return cimd.resolve(clientId, null, log);
  }
  const clock = options.clock ?? systemClock;
  // Rows only (secrets are still checked against the row's hash on every use); unknown ids are not kept. Any
  // client change (deletion) notifies and clears it; a CIMD client is kept no longer than its document is fresh,
  // so refreshing a document works as without the cache.
  const cache = options.changes && new ChangeCache<Client>(options.changes, clock, CLIENT_CACHE);
  // Requests that miss together (every one under way when a busy client's entry expires) share one read (measured:
  // five at once at 32 connections, each holding a pool connection); the first request's logger gets its CIMD warnings.
  return {
    async resolve(clientId, log) {
      if (!cache) return load(clientId, log);
      const client = await cache.lookup(
        clientId,
        (id) => load(id, log),
        (c) => (c.kind === 'CIMD' ? (c.freshUntil ?? clock.now()) : undefined),
      );
      // load() throws rather than answer null.
      if (!client) throw invalidClient('unknown client_id');
      return client;
    },
  };
}
