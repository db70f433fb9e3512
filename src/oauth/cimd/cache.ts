// The database-backed cache of Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01
// §4.4): a CIMD client_id resolves to its stored client while that is fresh, else to a new fetch, validated and
// stored. A failure is never stored as a document (§4.3), but it is remembered briefly and each host's fetches are
// limited (limits.ts); a recently stale document still serves while its host is failing (RFC 5861 stale-if-error).
// The client_id URL rules and host allow-list are checked here, once per resolution, cached or not, so tightening
// CIMD_ALLOW_LOOPBACK or CIMD_ALLOWED_HOSTS takes effect at once.
import type { Config } from '../../config.ts';
import type { Client } from '../../generated/prisma/client.ts';
import type { Clock } from '../../lib/clock.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import type { ClientStore } from '../../store/clients.ts';
import { invalidClient } from '../errors.ts';
import { type CheckedCimdUrl, type CimdUrlPolicy, checkCimdClientId } from './client-id.ts';
import { cimdClientRecord, validateCimdDocument } from './document.ts';
import { CimdError, type WarnLogger } from './error.ts';
import { type CimdFetchOptions, fetchCheckedCimdDocument } from './fetch.ts';
import { createCimdFetchLimits } from './limits.ts';

/**
 * How long past its freshness a document may still serve while its host is failing (RFC 5861 stale-if-error):
 * one hour rides out a brief outage without keeping a document its owner may have changed alive for long.
 */
export const CIMD_STALE_IF_ERROR = 3600;

export interface CimdCacheOptions extends Omit<CimdFetchOptions, keyof CimdUrlPolicy> {
  store: ClientStore;
  clock: Clock;
  config: Pick<
    Config,
    | 'cimdAllowLoopback'
    | 'cimdAllowedHosts'
    | 'cimdFailureTtl'
    | 'cimdHostFetchLimit'
    | 'allowedRedirectUriPatterns'
    | 'scopes'
  >;
  /** Seconds past freshness a document serves while its host fails; default CIMD_STALE_IF_ERROR. */
  staleIfError?: number;
  log?: WarnLogger | undefined;
  metrics?: Pick<Metrics, 'cimdFetch' | 'registration'> | undefined;
  /** Records each fetch's outcome in the client's trace (README: Client traces). */
  trace?: CimdTrace | undefined;
}

/** A CIMD fetch outcome for a trace: `ok`, `stale` (cached copy served), `failed` (no document), `refused` (invalid). */
export type CimdTrace = (clientId: string, outcome: string, detail: string) => void;

export interface CimdCache {
  /**
   * The client for a CIMD client_id: the cached row while fresh, else a new fetch (stored on success). A failed
   * fetch is never stored, only remembered for CIMD_FAILURE_TTL; the cached row still serves if the host is
   * failing and it went stale recently.
   */
  resolve(clientId: string, cached: Client | null, log?: WarnLogger): Promise<Client>;
}

// A client_id seen for the first time has no document yet, so a URL rule it breaks is reported as the
// identifier's own problem; for a cached client it is its document that became unusable (a CimdError).
const unknownClientIdProblem = (problem: string) => invalidClient(problem);

export function createCimdCache(options: CimdCacheOptions): CimdCache {
  const {
    store,
    clock,
    config,
    staleIfError = CIMD_STALE_IF_ERROR,
    log: defaultLog,
    metrics,
    trace,
    ...transport
  } = options;
  const fetchOptions: CimdFetchOptions = {
    ...transport,
    allowLoopback: config.cimdAllowLoopback,
    allowedHosts: config.cimdAllowedHosts,
  };
  const refusedDocuments = new WeakSet<CimdError>();
  // Concurrent requests for one client_id share one fetch.
  const inFlight = new Map<string, Promise<Client>>();
  const limits = createCimdFetchLimits({
    clock,
    failureTtl: config.cimdFailureTtl,
    hostFetchLimit: config.cimdHostFetchLimit,
  });

  async function fetchAndStore(clientId: string, url: CheckedCimdUrl, now: Date): Promise<Client> {
    const remembered = limits.rememberedFailure(clientId);
    if (remembered) throw remembered;
    limits.takeFetch(url.hostname);
    try {
      const fetched = await fetchCheckedCimdDocument(url, now, fetchOptions);
      let metadata: ReturnType<typeof validateCimdDocument>;
      try {
        metadata = validateCimdDocument(clientId, fetched.document, {
          supportedScopes: config.scopes,
          allowedRedirectUriPatterns: config.allowedRedirectUriPatterns,
        });
      } catch (err) {
        if (err instanceof CimdError) refusedDocuments.add(err); // fetched, then refused: told apart in traces
        throw err;
      }
      return await store.upsertCimd(cimdClientRecord(clientId, metadata, fetched, now));
    } catch (err) {
      if (err instanceof CimdError) limits.rememberFailure(clientId, err);
      throw err;
    }
  }

  async function refresh(
    clientId: string,
    url: CheckedCimdUrl,
    cached: Client | null,
    log: WarnLogger | undefined,
  ): Promise<Client> {
    const now = clock.now();
    try {
      const client = await fetchAndStore(clientId, url, now);
      metrics?.cimdFetch('fetched');
      if (!cached) metrics?.registration('cimd');
      trace?.(clientId, 'ok', cached ? 'document fetched again' : 'document fetched: client registered');
      return client;
    } catch (err) {
      if (!(err instanceof CimdError)) throw err;
      const context = { clientId, host: url.host, reason: err.description, detail: err.detail };
      const freshUntil = cached?.freshUntil?.getTime();
      if (err.staleUsable && freshUntil !== undefined && now.getTime() <= freshUntil + staleIfError * 1000) {
        log?.warn(
          context,
          'client metadata document host is failing; serving the cached document (stale-if-error)',
        );
        metrics?.cimdFetch('stale_if_error');
        trace?.(clientId, 'stale', `fetch failed, cached document served: ${err.description}`);
        return cached!;
      }
      log?.warn(context, 'client metadata document refused');
      metrics?.cimdFetch('refused');
      trace?.(clientId, refusedDocuments.has(err) ? 'refused' : 'failed', err.description);
      throw err;
    }
  }

  return {
    async resolve(clientId, cached, log = defaultLog) {
      const url = checkCimdClientId(clientId, fetchOptions, cached ? undefined : unknownClientIdProblem);
      if (cached?.freshUntil && cached.freshUntil.getTime() > clock.now().getTime()) return cached;
      const pending = inFlight.get(clientId);
      if (pending) return pending;
      const p = refresh(clientId, url, cached, log).finally(() => inFlight.delete(clientId));
      inFlight.set(clientId, p);
      return p;
    },
  };
}
