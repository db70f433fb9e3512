// `latchkey trace CLIENT_ID`: the protocol steps Latchkey recorded for a client (README: Client traces), oldest
// first, then a one-line diagnosis of what went wrong (src/trace/diagnosis.ts).
import { diagnose } from '../trace/diagnosis.ts';
import { type Command, stringOption, UsageError } from './command.ts';
import { formatTable, formatTime, isoTime, printable } from './table.ts';

const DEFAULT_LIMIT = 50;

function parseLimit(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_LIMIT;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > 1000)
    throw new UsageError('--limit must be a number from 1 to 1000');
  return n;
}

export const traceCommand: Command = {
  name: ['trace'],
  summary: "Show a client's recent protocol steps and diagnose where its flow stopped",
  description:
    'Steps are authorize, sign-in, consent, code issued, token, refresh, registration, CIMD fetch and refused ' +
    'introspections, as the running server recorded them (the newest TRACE_STEPS per client; written within a ' +
    'second). The last line names the usual failure: a code never redeemed, a redirect URI mismatch, a resource ' +
    'not registered, a failed CIMD fetch, a refresh replay.',
  args: [{ name: 'CLIENT_ID', description: 'the client_id (a CIMD client’s is its document URL)' }],
  options: {
    limit: { type: 'string', value: 'N', description: `the newest N steps (default ${DEFAULT_LIMIT})` },
  },
  async run(ctx, args) {
    const clientId = args.positionals[0]!;
    const limit = parseLimit(stringOption(args, 'limit'));
    const stores = await ctx.stores();
    const [client, rows] = await Promise.all([
      stores.clients.findByClientId(clientId),
      stores.traces.list(clientId, limit),
    ]);
    const diagnosis = diagnose(rows);
    const steps = rows.map((r) => ({
      at: isoTime(r.at),
      step: r.step,
      outcome: r.outcome,
      detail: r.detail,
      resource: r.resource,
      repeat: r.repeat,
    }));
    const heading = client
      ? `client ${clientId}: ${client.name} (${client.kind.toLowerCase()})`
      : `client ${clientId}: no such client is registered now`;
    const timeline = rows.length
      ? formatTable(
          ['TIME', 'STEP', 'OUTCOME', 'RESOURCE', 'DETAIL'],
          rows.map((r) => [
            formatTime(r.at),
            r.step,
            r.repeat > 1 ? `${r.outcome} ×${r.repeat}` : r.outcome,
            r.resource ?? '-',
            r.detail ?? '-',
          ]),
        )
      : 'no steps recorded';
    return {
      json: {
        client_id: clientId,
        client: client ? { name: client.name, kind: client.kind } : null,
        steps,
        diagnosis,
      },
      text: [printable(heading), timeline, '', `diagnosis: ${printable(diagnosis.message)}`].join('\n'),
    };
  },
};
