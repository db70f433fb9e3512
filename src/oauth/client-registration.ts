// Creating clients, and recording their use: one path for every kind (dynamic registration, CIMD documents, the operator's CLI), so each
// applies the same metadata rules (client-metadata.ts). A client_id is random; a secret is issued only when the
// auth method presents one, returned once, and stored only as a SHA-256 hash.
import type { FastifyBaseLogger } from 'fastify';
import type { Client, ClientKind, Prisma } from '../generated/prisma/client.ts';
import { hashSecret, randomToken } from '../lib/crypto.ts';
import { type ClientStore, type NewClient, TOUCH_INTERVAL_SECONDS } from '../store/clients.ts';
import type { ClientMetadata } from './client-metadata.ts';

/** The stored form of validated metadata. */
export function clientRecord(
  kind: ClientKind,
  clientId: string,
  m: ClientMetadata,
  extra: Pick<NewClient, 'secretHash' | 'metadata' | 'fetchedAt' | 'freshUntil'> = {},
): NewClient {
  return {
    clientId,
    kind,
    name: m.name,
    redirectUris: m.redirectUris,
    grantTypes: m.grantTypes,
    responseTypes: m.responseTypes,
    tokenEndpointAuthMethod: m.tokenEndpointAuthMethod,
    scope: m.scope ?? null,
    clientUri: m.clientUri ?? null,
    logoUri: m.logoUri ?? null,
    ...extra,
  };
}

export interface CreatedClient {
  client: Client;
  /** The client secret, to show once; undefined for public clients. */
  secret: string | undefined;
}

/**
 * A new client id: 128 random bits, base64url, never starting with '-', which a command line (`latchkey client show
 * ID`, `grant list --client ID`) would read as an option. Drawing again keeps the ids uniform over what is left.
 */
export function newClientId(): string {
  for (;;) {
    const id = randomToken(16);
    if (!id.startsWith('-')) return id;
  }
}

/** Creates a dynamically registered or operator client from validated metadata (`address`: the request's). */
export async function createClient(
  store: Pick<ClientStore, 'create'>,
  kind: Exclude<ClientKind, 'CIMD'>,
  m: ClientMetadata,
  request?: Prisma.InputJsonValue,
  address?: string,
): Promise<CreatedClient> {
  const secret = m.tokenEndpointAuthMethod === 'none' ? undefined : randomToken(32);
  const record = clientRecord(kind, newClientId(), m, {
    secretHash: secret === undefined ? null : hashSecret(secret),
    ...(request !== undefined && { metadata: request }),
  });
  return { client: await store.create(record, address), secret };
}

/**
 * Records that a client was used (UNUSED_CLIENT_TTL sweeps dynamic clients nobody uses). It runs after a code or
 * tokens are committed, so a failure is logged and never costs the client what it was just given.
 */
export async function recordClientUse(
  store: Pick<ClientStore, 'touch'>,
  client: Client,
  now: Date,
  log: FastifyBaseLogger,
): Promise<void> {
  // The client row may come from the client cache (oauth/clients.ts): a use it already records is not sent again.
  const previous = client.lastUsedAt;
  const recorded = previous?.getTime();
  if (recorded !== undefined && now.getTime() - recorded < TOUCH_INTERVAL_SECONDS * 1000) return;
  // Taken before the write, so that the other requests holding the same cached row send nothing. Otherwise every
  // request under way when the minute runs out sends its own UPDATE, each waiting on the row's lock with a pool
  // connection held (measured: five at once at 32 connections, and the pool grew by as many).
  client.lastUsedAt = now;
  try {
    // Written only when the stored time is stale: another instance may have recorded a use since this row was read,
    // and then the stored time is recent too.
    await store.touch(client.id, now);
  } catch (err) {
    if (client.lastUsedAt === now) client.lastUsedAt = previous; // not recorded: a later request tries again
    log.warn({ err, clientId: client.clientId }, 'could not record the client as used');
  }
}
