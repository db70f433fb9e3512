// Client traces (README: Client traces): batches of protocol steps written by src/trace/recorder.ts, the newest
// `keep` per client_id kept, and read back by `latchkey trace`.
import type { ClientTrace, PrismaClient } from '../generated/prisma/client.ts';
import type { RecordedStep } from '../trace/steps.ts';

// Stored as Prisma stores DateTime in a timestamp(3) column: UTC wall time, no zone.
const utc = (d: Date) => d.toISOString().slice(0, 23);

export function traceStore(prisma: PrismaClient) {
  return {
    /**
     * Inserts the steps, then removes all but the newest `keep` rows of each client_id the batch touched. A step
     * for a client_id that names no client is dropped, except a CIMD fetch (its URL may never have resolved), so
     * made-up client_ids cannot fill the table. Returns the rows inserted.
     */
    async append(steps: readonly RecordedStep[], keep: number): Promise<number> {
      if (steps.length === 0) return 0;
      const col = <T>(f: (s: RecordedStep) => T) => steps.map(f);
      const [inserted] = await prisma.$transaction([
        prisma.$executeRaw`
          INSERT INTO "client_traces" ("client_id", "at", "step", "outcome", "detail", "resource", "repeat")
          SELECT t.client_id, t.at, t.step, t.outcome, t.detail, t.resource, t.repeat
          FROM unnest(
            ${col((s) => s.clientId)}::text[], ${col((s) => utc(s.at))}::timestamp(3)[],
            ${col((s) => s.step)}::text[], ${col((s) => s.outcome)}::text[],
            ${col((s) => s.detail ?? null)}::text[], ${col((s) => s.resource ?? null)}::text[],
            ${col((s) => s.repeat)}::int[]
          ) WITH ORDINALITY AS t(client_id, at, step, outcome, detail, resource, repeat, n)
          WHERE t.step = 'cimd_fetch' OR EXISTS (SELECT 1 FROM "clients" c WHERE c."client_id" = t.client_id)
          ORDER BY t.n`,
        prisma.$executeRaw`
          DELETE FROM "client_traces" WHERE "id" IN (
            SELECT "id" FROM (
              SELECT "id", row_number() OVER (PARTITION BY "client_id" ORDER BY "at" DESC, "id" DESC) AS n
              FROM "client_traces" WHERE "client_id" = ANY(${[...new Set(col((s) => s.clientId))]}::text[])
            ) ranked WHERE n > ${keep})`,
      ]);
      return inserted;
    },

    /** The newest `limit` steps of a client_id, oldest first. */
    async list(clientId: string, limit: number): Promise<ClientTrace[]> {
      const rows = await prisma.clientTrace.findMany({
        where: { clientId },
        orderBy: [{ at: 'desc' }, { id: 'desc' }],
        take: limit,
      });
      return rows.reverse();
    },

    /**
     * Removes, in one bounded batch, steps older than `before` whose client_id names no client: clients deleted
     * by the sweeper, CIMD URLs that never resolved. Returns the rows removed.
     */
    pruneOrphans(before: Date, batch = 1000): Promise<number> {
      return prisma.$executeRaw`
        DELETE FROM "client_traces" WHERE "id" IN (
          SELECT t."id" FROM "client_traces" t
          WHERE t."at" < ${utc(before)}::timestamp(3)
            AND NOT EXISTS (SELECT 1 FROM "clients" c WHERE c."client_id" = t."client_id")
          LIMIT ${batch})`;
    },
  };
}

export type TraceStore = ReturnType<typeof traceStore>;
