// Running server instances (README: How it is built). A revocation waits for the acknowledgement of every instance
// whose heartbeat is fresh; the rows say which those are. Times come from the writer's clock (injectable in tests).
import type { PrismaClient } from '../generated/prisma/client.ts';

export interface InstanceRow {
  id: string;
  host: string;
  pid: number;
  startedAt: Date;
  heartbeatAt: Date;
}

export function instanceStore(prisma: PrismaClient) {
  return {
    /** Writes (or rewrites, if someone removed it) this instance's row with a fresh heartbeat. */
    async beat(row: Omit<InstanceRow, 'heartbeatAt'>, now: Date): Promise<void> {
      await prisma.instance.upsert({
        where: { id: row.id },
        create: { ...row, heartbeatAt: now },
        update: { heartbeatAt: now },
      });
    },

    async remove(id: string): Promise<void> {
      await prisma.instance.deleteMany({ where: { id } });
    },

    /** Ids of the instances whose heartbeat is newer than `since`. */
    async live(since: Date): Promise<string[]> {
      const rows = await prisma.instance.findMany({
        where: { heartbeatAt: { gt: since } },
        select: { id: true },
      });
      return rows.map((r) => r.id);
    },

    /** Every row, newest heartbeat first (for `latchkey doctor`-style listings and tests). */
    list(): Promise<InstanceRow[]> {
      return prisma.instance.findMany({ orderBy: { heartbeatAt: 'desc' } });
    },

    /** Removes rows whose heartbeat is older than `before` (instances that died without a clean stop). */
    async removeLapsed(before: Date): Promise<number> {
      const r = await prisma.instance.deleteMany({ where: { heartbeatAt: { lt: before } } });
      return r.count;
    },
  };
}

export type InstanceStore = ReturnType<typeof instanceStore>;
