// The audit trail (README: Audit trail): who changed what, and every sign-in attempt. A change's event is written by
// the store function that makes the change, inside its transaction, so a change that rolls back leaves no event.
// An event never holds a secret, token, code, password or a hash of one; people appear by user id, not email.
import { randomUUID } from 'node:crypto';
import type { AuditEvent as AuditRow, Prisma, PrismaClient } from '../generated/prisma/client.ts';
import type { RevokeReason, Tx } from './tokens.ts';

export type AuditAction =
  | 'sign_in'
  | 'consent'
  | 'grant_created'
  | 'grant_revoked'
  | 'client_registered'
  | 'client_deleted'
  | 'resource_server_added'
  | 'resource_server_updated'
  | 'resource_server_rotated'
  | 'resource_server_deleted'
  | 'user_added'
  | 'user_invited'
  | 'password_reset_issued'
  | 'user_disabled'
  | 'user_enabled'
  | 'user_deleted'
  | 'config_applied';

export type AuditOutcome = 'success' | 'failure' | 'denied';

/** Who acted: a person, a client, the operator (CLI), Latchkey itself, replay detection or the upstream provider. */
export type AuditActor =
  | `user:${string}`
  | `client:${string}`
  | 'operator'
  | 'system'
  | 'replay'
  | 'upstream';

/** Who asks for a change, and from which address (when a request does). */
export interface AuditBy {
  actor: AuditActor;
  address?: string | null | undefined;
}

export const OPERATOR: AuditBy = { actor: 'operator' };

export interface AuditEvent {
  action: AuditAction;
  outcome?: AuditOutcome;
  actor: AuditActor;
  /** The user id the event concerns, or the thing changed (a client_id, a resource URI). */
  subject?: string | null;
  clientId?: string | null;
  resource?: string | null;
  address?: string | null | undefined;
  /** Reason codes and ids only: never a secret, and never an email. */
  detail?: Record<string, string | number | boolean | null>;
  at: Date;
}

type Db = Pick<Tx, 'auditEvent'>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Writes one event with `db`: pass the transaction that makes the change. */
export async function audit(db: Db, e: AuditEvent): Promise<void> {
  await db.auditEvent.create({
    data: {
      id: randomUUID(),
      occurredAt: e.at,
      action: e.action,
      outcome: e.outcome ?? 'success',
      actor: e.actor,
      subject: e.subject ?? null,
      clientId: e.clientId ?? null,
      resource: e.resource ?? null,
      address: e.address ?? null,
      ...(e.detail && { detail: e.detail }),
    },
  });
}

/**
 * Who ended a grant, from why (README: Audit trail): `owner` is the grant's user (or the operator when it has none),
 * `client` its client, anything else a fixed actor.
 */
function revoker(reason: RevokeReason): 'owner' | 'client' | AuditActor {
  switch (reason) {
    case 'user':
      return 'owner';
    case 'client':
      return 'client';
    case 'operator':
    case 'upstream_unlinked':
      return 'operator';
    case 'code_replay':
    case 'refresh_replay':
      return 'replay';
    case 'upstream_revoked':
      return 'upstream';
    case 'invalid_exchange':
      return 'system';
  }
}

/**
 * The grant_created or grant_revoked event of one grant, named by its user, client_id and resource, in one statement
 * (the grant's names are read by the INSERT itself). A grant is created by the person who approved it, or by the
 * client itself (client_credentials, RFC 6749 §4.4).
 */
export async function auditGrant(
  tx: Tx,
  grantId: string,
  change: { action: 'grant_created' } | { action: 'grant_revoked'; reason: RevokeReason },
  at: Date,
  address?: string | null,
): Promise<void> {
  const revoked = change.action === 'grant_revoked';
  // created: the approving user, else the client; revoked: see revoker().
  const who = revoked ? revoker(change.reason) : 'creator';
  const reason = revoked ? change.reason : null;
  await tx.$executeRaw`
    INSERT INTO audit_events (id, occurred_at, action, outcome, actor, subject, client_id, resource, address, detail)
    SELECT ${randomUUID()}::uuid, ${at.toISOString()}::timestamp(3), ${change.action}, 'success',
           CASE ${who}::text
             WHEN 'owner' THEN coalesce('user:' || g.user_id::text, 'operator')
             WHEN 'client' THEN 'client:' || c.client_id
             WHEN 'creator' THEN coalesce('user:' || g.user_id::text, 'client:' || c.client_id)
             ELSE ${who}::text
           END,
           g.user_id::text, c.client_id, rs.uri, ${address ?? null}::text,
           CASE WHEN ${reason}::text IS NULL
             THEN jsonb_build_object('grant', g.id::text, 'scope', array_to_string(g.scopes, ' '))
             ELSE jsonb_build_object('grant', g.id::text, 'reason', ${reason}::text)
           END
      FROM grants g
      JOIN clients c ON c.id = g.client_id
      JOIN resource_servers rs ON rs.id = g.resource_server_id
     WHERE g.id = ${grantId}::uuid`;
}

export interface AuditFilter {
  /** Events about this user id. */
  subject?: string;
  clientId?: string;
  since?: Date;
  limit: number;
}

export function auditStore(prisma: PrismaClient) {
  return {
    /** An event that changes nothing else (a failed sign-in, a denied consent): one statement of its own. */
    record(e: AuditEvent): Promise<void> {
      return audit(prisma, e);
    },

    /** A person refused to approve a client for a resource (from `address`). */
    consentDenied(
      userId: string,
      clientId: string,
      resource: string,
      address: string,
      at: Date,
    ): Promise<void> {
      const actor = `user:${userId}` as const;
      const e = { action: 'consent', outcome: 'denied', actor, subject: userId, clientId, resource } as const;
      return audit(prisma, { ...e, address, at });
    },

    /** The newest `limit` events that match, oldest first. */
    async list(f: AuditFilter): Promise<AuditRow[]> {
      const where: Prisma.AuditEventWhereInput = {
        ...(f.subject !== undefined && { subject: f.subject }),
        ...(f.clientId !== undefined && { clientId: f.clientId }),
        ...(f.since !== undefined && { occurredAt: { gte: f.since } }),
      };
      const rows = await prisma.auditEvent.findMany({
        where,
        orderBy: [{ occurredAt: 'desc' }, { id: 'desc' }],
        take: f.limit,
      });
      return rows.reverse();
    },

    /** The emails of those of `userIds` that still exist (the CLI shows them beside the ids events hold). */
    async emails(userIds: readonly string[]): Promise<Map<string, string>> {
      const ids = [...new Set(userIds)].filter((id) => UUID.test(id));
      if (ids.length === 0) return new Map();
      const users = await prisma.user.findMany({
        where: { id: { in: ids } },
        select: { id: true, email: true },
      });
      return new Map(users.map((u) => [u.id, u.email]));
    },
  };
}

export type AuditStore = ReturnType<typeof auditStore>;

/** Removes events older than `retention` seconds, in batches so no statement holds many rows; returns how many. */
export async function sweepAuditEvents(prisma: PrismaClient, now: Date, retention: number): Promise<number> {
  const cutoff = new Date(now.getTime() - retention * 1000);
  let removed = 0;
  for (;;) {
    const batch = await prisma.auditEvent.findMany({
      where: { occurredAt: { lt: cutoff } },
      select: { id: true },
      take: 1000,
    });
    if (batch.length === 0) return removed;
    const r = await prisma.auditEvent.deleteMany({ where: { id: { in: batch.map((b) => b.id) } } });
    removed += r.count;
    if (batch.length < 1000) return removed;
  }
}
