// Validation of a fetched Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document-01 §4.1, §6.1):
// its client_id is the URL it came from, it holds no shared secret and asks for no client authentication (a
// document anyone can read cannot keep a secret), and the rest is RFC 7591 metadata under this server's policy.
// A valid document becomes the client record the cache stores.
import type { Prisma } from '../../generated/prisma/client.ts';
import { addSeconds } from '../../lib/clock.ts';
import type { NewClient } from '../../store/clients.ts';
import {
  type ClientMetadata,
  type ClientMetadataPolicy,
  validateClientMetadata,
} from '../client-metadata.ts';
import { clientRecord } from '../client-registration.ts';
import { OAuthError } from '../errors.ts';
import { CimdError } from './error.ts';

const SHARED_SECRET_METHODS = new Set(['client_secret_post', 'client_secret_basic', 'client_secret_jwt']);

/** Validates a fetched document for `clientId`; throws CimdError. */
export function validateCimdDocument(
  clientId: string,
  document: unknown,
  policy: Omit<ClientMetadataPolicy, 'source'>,
): ClientMetadata {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new CimdError('the document must be a JSON object');
  }
  const d = document as Record<string, unknown>;
  // §4.1: the client_id property MUST match the URL, by simple string comparison.
  if (d.client_id !== clientId) throw new CimdError("the document's client_id does not match its URL");
  // §4.1: no symmetric secrets: a document anyone can read cannot hold one.
  if ('client_secret' in d || 'client_secret_expires_at' in d) {
    throw new CimdError('the document must not contain client_secret or client_secret_expires_at');
  }
  const method = d.token_endpoint_auth_method;
  if (typeof method === 'string' && SHARED_SECRET_METHODS.has(method)) {
    throw new CimdError('the document must not use a shared-secret token_endpoint_auth_method');
  }
  // We authenticate no client by key (private_key_jwt, tls_client_auth…), so a document asking for it is unusable.
  if (method !== undefined && method !== null && method !== 'none') {
    throw new CimdError('token_endpoint_auth_method must be none');
  }
  try {
    return validateClientMetadata(d, { ...policy, source: 'cimd' });
  } catch (err) {
    if (err instanceof OAuthError) throw new CimdError(err.description);
    throw err;
  }
}

/**
 * The public CIMD client a validated document describes, fetched at `fetchedAt` and fresh for `freshFor`
 * seconds (§4.4). `document` is kept as the client's metadata.
 */
export function cimdClientRecord(
  clientId: string,
  metadata: ClientMetadata,
  fetched: { document: unknown; freshFor: number },
  fetchedAt: Date,
): NewClient {
  // The same record every client kind is stored as (client-registration.ts); a CIMD client has no secret.
  return clientRecord('CIMD', clientId, metadata, {
    secretHash: null,
    // Validated by validateCimdDocument: a JSON object, without secrets.
    metadata: fetched.document as Prisma.InputJsonValue,
    fetchedAt,
    freshUntil: addSeconds(fetchedAt, fetched.freshFor),
  });
}
