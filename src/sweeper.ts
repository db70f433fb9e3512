// Runs the sweep now and then in the server process. Every instance may run it: the deletes are idempotent.
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { Database } from './db/database.ts';
import type { Clock } from './lib/clock.ts';
import type { Metrics } from './metrics/metrics.ts';
import { sweepAuditEvents } from './store/audit.ts';
import { sweepExpired } from './store/sweep.ts';

type SweepMetrics = Pick<Metrics, 'sweep'>;

/** One sweep: logs what it removed (or why it failed) and counts the run (README: Metrics). Never throws. */
export async function sweepOnce(
  db: Database,
  config: Pick<Config, 'unusedClientTtl' | 'auditRetention'>,
  clock: Clock,
  logger: Pick<Logger, 'info' | 'warn'>,
  metrics?: SweepMetrics,
): Promise<void> {
  try {
    const swept = await sweepExpired(db.prisma, clock.now(), config.unusedClientTtl);
    const r = {
      ...swept,
      auditEvents: await sweepAuditEvents(db.prisma, clock.now(), config.auditRetention),
    };
    metrics?.sweep(r);
    const total = Object.values(r).reduce((a, b) => a + b, 0);
    if (total > 0) logger.info({ swept: r }, 'swept expired rows');
  } catch (err) {
    metrics?.sweep(undefined);
    logger.warn({ err: { message: (err as Error).message } }, 'sweep failed; will retry');
  }
}

export function startSweeper(
  db: Database,
  config: Config,
  clock: Clock,
  logger: Logger,
  intervalMs = 10 * 60_000,
  metrics?: SweepMetrics,
): () => void {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      await sweepOnce(db, config, clock, logger, metrics);
    } finally {
      running = false;
    }
  };
  const first = setTimeout(() => void run(), 30_000);
  const timer = setInterval(() => void run(), intervalMs);
  first.unref();
  timer.unref();
  return () => {
    clearTimeout(first);
    clearInterval(timer);
  };
}
