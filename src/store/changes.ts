// Change notifications. Anything that can turn an active token inactive (a revocation, a disabled user, a deleted
// client or resource server, a rotated resource-server secret) announces itself with NOTIFY in the same
// transaction, so every instance's caches drop what they hold the moment it commits (README: How it is built).
import type { PrismaClient } from '../generated/prisma/client.ts';

export const CHANGES_CHANNEL = 'latchkey_changes';

export type ChangeKind = 'token' | 'grant' | 'user' | 'client' | 'resource_server';

type Queryable = Pick<PrismaClient, '$executeRaw'>;

export function notifyChange(db: Queryable, kind: ChangeKind): Promise<void> {
  return notify(db, kind);
}

/** A marker through the same channel, so a sender can tell when its earlier notifications were delivered. */
export function notifyMarker(db: Queryable, marker: string): Promise<void> {
  return notify(db, marker);
}

async function notify(db: Queryable, payload: string): Promise<void> {
  await db.$executeRaw`SELECT pg_notify(${CHANGES_CHANNEL}, ${payload})`;
}
