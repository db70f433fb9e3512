// Client lookup: turns a client_id into a client, or an invalid_client error that says why.
// Registered clients (dynamic and operator) are read from the database. URL client_ids are Client ID Metadata
// Documents (draft-ietf-oauth-client-id-metadata-document), fetched and cached by the CIMD module.
import { loadConfig } from '../config.ts';
import type { Client } from '../generated/prisma/client.ts';
import { type Clock, systemClock } from '../lib/clock.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Stores } from '../store/index.ts';
import {
  type CimdCacheOptions,
  type CimdFetchOptions,
  createCimdCache,
  looksLikeUrlClientId,
  type WarnLogger,
} from './cimd/index.ts';
import { invalidClient } from './errors.ts';

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
  return {
    async resolve(clientId, log) {
      const client = await stores.clients.findByClientId(clientId);
      // A registered client wins even when its client_id looks like a URL (an operator may choose one).
      if (client && client.kind !== 'CIMD') return client;
      if (client) return cimd.resolve(clientId, client, log);
      if (!looksLikeUrlClientId(clientId)) throw invalidClient('unknown client_id');
      // The CIMD cache checks the client_id URL rules and host allow-list, once, cached client or not.
      return cimd.resolve(clientId, null, log);
    },
  };
}
