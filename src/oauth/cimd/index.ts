// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01; section numbers are -01's).
// A client_id that is an https URL names a JSON document holding the client's RFC 7591 metadata. One file per
// concern, each checked once per resolution, in this order:
// - client-id.ts: which client_ids are such URLs (§3) and CIMD_ALLOWED_HOSTS;
// - addresses.ts: special-use addresses (§6.5, RFC 6890);
// - fetch.ts: the pinned fetch: resolve once, connect to the vetted address, no redirects, size and time limits;
// - freshness.ts: how long a response stays fresh (§4.4, RFC 9111 §4.2);
// - document.ts: document validation (§4.1, §6.1) and the client record it becomes;
// - limits.ts: failed fetches remembered briefly, and a per-host limit on fetches (§6);
// - cache.ts: the database-backed cache with stale-if-error (§4.3, §4.4, RFC 5861).
export { addressProblem, specialUseRange } from './addresses.ts';
export { CIMD_STALE_IF_ERROR, type CimdCache, type CimdCacheOptions, createCimdCache } from './cache.ts';
export {
  type CheckedCimdUrl,
  type CimdUrlPolicy,
  checkCimdClientId,
  cimdClientIdProblem,
  cimdHostAllowed,
  isCimdClientId,
  looksLikeUrlClientId,
} from './client-id.ts';
export { cimdClientRecord, validateCimdDocument } from './document.ts';
export { CimdError, type WarnLogger } from './error.ts';
export {
  CIMD_MAX_BYTES,
  CIMD_TIMEOUT_MS,
  type CimdFetchOptions,
  type FetchedDocument,
  fetchCheckedCimdDocument,
  fetchCimdDocument,
  type LookupHost,
  type RequestFunction,
  type ResolvedAddress,
  systemLookup,
  warnIfCimdLoopbackAllowed,
} from './fetch.ts';
export {
  CIMD_DEFAULT_FRESHNESS,
  CIMD_MAX_FRESHNESS,
  CIMD_MIN_FRESHNESS,
  freshnessLifetime,
} from './freshness.ts';
export { CIMD_HOST_WINDOW, type CimdFetchLimits, createCimdFetchLimits } from './limits.ts';
