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
 * Per client store (one per app): the use of each client this process last wrote, or is writing, by client row id.
 * Once it holds `pruneAt` clients, those whose use is older than the interval (they no longer skip anything) are
 * dropped, and the next pruning waits until it has grown to twice what was left (never below 10,000).
 */
const written = new WeakMap<object, { uses: Map<string, number>; pruneAt: number }>();
const PRUNE_AT = 10_000;

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
  const interval = TOUCH_INTERVAL_SECONDS * 1000;
  const at = now.getTime();
  let state = written.get(store);
  if (!state) {
    state = { uses: new Map(), pruneAt: PRUNE_AT };
    written.set(store, state);
  }
  const mine = state.uses;
  // The row may hold a recent use (another instance wrote it); or this process wrote one since the row was read, or is
  // writing it now (the map, by client id: rows of one client read at different times are different objects, and the
  // cached row is never changed). Either way nothing is sent. Otherwise every request under way when the minute runs
  // out would send its own UPDATE, each waiting on the row's lock with a pool connection held (measured: five at once
  // at 32 connections, and the pool grew by as many).
  const recorded = Math.max(client.lastUsedAt?.getTime() ?? -Infinity, mine.get(client.id) ?? -Infinity);
  if (at - recorded < interval) return;
  const previous = mine.get(client.id);
  mine.set(client.id, at);
  if (mine.size >= state.pruneAt) {
    for (const [id, t] of mine) if (at - t >= interval) mine.delete(id);
    state.pruneAt = Math.max(PRUNE_AT, 2 * mine.size);
  }
  try {
    // Written only when the stored time is stale: another instance may have recorded a use since this row was read,
    // and then the stored time is recent too.
    await store.touch(client.id, now);
  } catch (err) {
    // Not recorded: the next request tries again.
    if (mine.get(client.id) === at) {
      if (previous === undefined) mine.delete(client.id);
      else mine.set(client.id, previous);
    }
    log.warn({ err, clientId: client.clientId }, 'could not record the client as used');
  }
}
