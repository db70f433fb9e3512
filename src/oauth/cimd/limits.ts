// What keeps Client ID Metadata Document fetches from becoming an amplifier against third parties
// (draft-ietf-oauth-client-id-metadata-document-01 §6): a failed fetch is remembered for CIMD_FAILURE_TTL seconds,
// so N requests naming a bad URL cause one outbound request, not N (the draft forbids caching an error as a
// success, §4.3, not remembering that a fetch failed); and each host gets at most CIMD_HOST_FETCH_LIMIT fetches a
// minute, however many distinct URLs on it are named. Both live in this process's memory, bounded in size: the
// limits are per instance, which bounds what each instance sends.
import { BoundedCache } from '../../lib/bounded-cache.ts';
import type { Clock } from '../../lib/clock.ts';
import { CimdError } from './error.ts';

/** The fixed window of the per-host fetch limit, in seconds. */
export const CIMD_HOST_WINDOW = 60;
const MAX_ENTRIES = 10_000;

export interface CimdFetchLimitOptions {
  clock: Clock;
  /** Seconds a failed fetch is remembered; 0 remembers nothing. */
  failureTtl: number;
  /** Fetches allowed per host per CIMD_HOST_WINDOW. */
  hostFetchLimit: number;
}

export interface CimdFetchLimits {
  /** The failure remembered for `clientId`, while it lasts. */
  rememberedFailure(clientId: string): CimdError | undefined;
  rememberFailure(clientId: string, err: CimdError): void;
  /** Counts one fetch against `host`; throws a CimdError once the host's limit for this window is reached. */
  takeFetch(host: string): void;
}

export function createCimdFetchLimits(options: CimdFetchLimitOptions): CimdFetchLimits {
  const now = () => options.clock.now().getTime();
  const failures = new BoundedCache<string, CimdError>({ maxEntries: MAX_ENTRIES, now });
  const hosts = new BoundedCache<string, { hits: number; resetAt: number }>({ maxEntries: MAX_ENTRIES, now });
  return {
    rememberedFailure: (clientId) => failures.get(clientId),
    rememberFailure(clientId, err) {
      if (options.failureTtl > 0) failures.set(clientId, err, now() + options.failureTtl * 1000);
    },
    takeFetch(host) {
      const key = host.toLowerCase();
      const window = hosts.get(key) ?? { hits: 0, resetAt: now() + CIMD_HOST_WINDOW * 1000 };
      if (window.hits >= options.hostFetchLimit) {
        // The host is not at fault, so a recent document of it may still serve (RFC 5861 stale-if-error).
        throw new CimdError('too many fetches from this host; try again later', {
          staleUsable: true,
          detail: `more than ${options.hostFetchLimit} fetches from ${key} within ${CIMD_HOST_WINDOW} s`,
        });
      }
      window.hits++;
      hosts.set(key, window, window.resetAt);
    },
  };
}
