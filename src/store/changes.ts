// Change notifications. Anything that can turn an active token inactive (a revocation, a disabled user, a deleted
// client or resource server, a rotated resource-server secret) announces itself with NOTIFY in the same
// transaction, so every instance's caches drop what they hold the moment it commits (README: How it is built).
// After the commit the changer sends a marker on the same channel, and every instance acknowledges the marker on
// the ack channel once it has cleared its caches (src/acks.ts).
import type { PrismaClient } from '../generated/prisma/client.ts';

export const CHANGES_CHANNEL = 'latchkey_changes';
export const ACKS_CHANNEL = 'latchkey_acks';
const MARKER = 'mark:';

export type ChangeKind = 'token' | 'grant' | 'user' | 'client' | 'resource_server';

type Queryable = Pick<PrismaClient, '$executeRaw'>;

export function notifyChange(db: Queryable, kind: ChangeKind): Promise<void> {
  return notify(db, CHANGES_CHANNEL, kind);
}

/** A marker through the change channel, sent after a change committed: whoever receives it has received the change. */
export function notifyMarker(db: Queryable, markerId: string): Promise<void> {
  return notify(db, CHANGES_CHANNEL, `${MARKER}${markerId}`);
}

/** The marker id in a change-channel payload, or undefined for a change itself. */
export function markerOf(payload: string): string | undefined {
  return payload.startsWith(MARKER) ? payload.slice(MARKER.length) : undefined;
}

/** `instanceId` has cleared its caches of everything before `markerId`. */
export function notifyAck(db: Queryable, instanceId: string, markerId: string): Promise<void> {
  return notify(db, ACKS_CHANNEL, `${instanceId}:${markerId}`);
}

async function notify(db: Queryable, channel: string, payload: string): Promise<void> {
  await db.$executeRaw`SELECT pg_notify(${channel}, ${payload})`;
}
