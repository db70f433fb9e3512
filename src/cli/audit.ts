// `latchkey audit`: the audit trail (README: Audit trail), newest last. Events name people by user id; the list
// shows the email of those who still exist beside it.
import type { AuditFilter } from '../store/audit.ts';
import { CliError, type Command, stringOption, UsageError } from './command.ts';
import { formatTime, isoTime, listResult } from './table.ts';

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** `--since`: a duration back from `now` (`30m`, `24h`, `7d`, `2w`) or a date (`2026-11-01`, ISO 8601). */
export function parseSince(value: string, now: Date): Date {
  const duration = /^(\d{1,6})([smhdw])$/.exec(value.trim());
  if (duration) return new Date(now.getTime() - Number(duration[1]) * UNITS[duration[2]!]! * 1000);
  const date = /^\d{4}-\d{2}-\d{2}/.test(value) ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) {
    throw new UsageError(
      `--since must be a duration like 24h or 7d, or a date like 2026-11-01 (got "${value}")`,
    );
  }
  return date;
}

function parseLimit(value: string | undefined): number {
  if (value === undefined) return 100;
  const n = /^\d{1,6}$/.test(value) ? Number(value) : 0;
  if (n < 1 || n > 100000) throw new UsageError('--limit must be a whole number from 1 to 100000');
  return n;
}

export const auditCommand: Command = {
  name: ['audit'],
  summary: 'Show the audit trail: sign-ins, approvals, grants, and changes to clients, resources and users',
  description:
    'The newest events that match, oldest first (--limit, default 100). ACTOR is user:<id>, client:<client_id>,\n' +
    'operator (this CLI), system (Latchkey itself, e.g. configuration applied at start), replay (a replayed code\n' +
    'or refresh token ended the grant) or upstream (the upstream provider ended the sign-in behind it).',
  options: {
    user: { type: 'string', value: 'EMAIL', description: 'only events about this user' },
    client: { type: 'string', value: 'CLIENT_ID', description: 'only events about this client' },
    since: {
      type: 'string',
      value: 'WHEN',
      description: 'only events since a duration ago (24h, 7d) or a date',
    },
    limit: { type: 'string', value: 'N', description: 'at most N events, the newest (default 100)' },
  },
  async run(ctx, args) {
    const filter: AuditFilter = { limit: parseLimit(stringOption(args, 'limit')) };
    const since = stringOption(args, 'since');
    if (since !== undefined) filter.since = parseSince(since, new Date());
    const stores = await ctx.stores();
    const email = stringOption(args, 'user');
    if (email !== undefined) {
      const user = await stores.users.findByEmail(email);
      if (!user) throw new CliError(`no user ${email}`);
      filter.subject = user.id;
    }
    const clientId = stringOption(args, 'client');
    if (clientId !== undefined) filter.clientId = clientId;
    const rows = await stores.audit.list(filter);
    const userOf = (actor: string) => (actor.startsWith('user:') ? actor.slice(5) : undefined);
    const emails = await stores.audit.emails(
      rows.flatMap((r) => [r.subject ?? '', userOf(r.actor) ?? '']).filter(Boolean),
    );
    const events = rows.map((r) => ({
      id: r.id,
      occurred_at: isoTime(r.occurredAt)!,
      action: r.action,
      outcome: r.outcome,
      actor: r.actor,
      subject: r.subject,
      // The email of the user the event is about, while that user exists.
      user: (r.subject && emails.get(r.subject)) ?? emails.get(userOf(r.actor) ?? '') ?? null,
      client_id: r.clientId,
      resource: r.resource,
      address: r.address,
      detail: r.detail,
    }));
    return listResult(
      events,
      [
        ['TIME', (e) => formatTime(new Date(e.occurred_at))],
        ['ACTION', (e) => e.action],
        ['OUTCOME', (e) => e.outcome],
        ['ACTOR', (e) => e.actor],
        ['USER', (e) => e.user ?? '-'],
        ['SUBJECT', (e) => (e.user ? '-' : (e.subject ?? '-'))],
        ['CLIENT_ID', (e) => e.client_id ?? '-'],
        ['RESOURCE', (e) => e.resource ?? '-'],
        ['ADDRESS', (e) => e.address ?? '-'],
        ['DETAIL', (e) => (e.detail ? JSON.stringify(e.detail) : '-')],
      ],
      'no events',
    );
  },
};
