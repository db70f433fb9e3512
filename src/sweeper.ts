// Runs the sweep now and then in the server process. Every instance may run it: the deletes are idempotent.
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { Database } from './db/database.ts';
import type { Clock } from './lib/clock.ts';
import { sweepExpired } from './store/sweep.ts';

export function startSweeper(
  db: Database,
  config: Config,
  clock: Clock,
  logger: Logger,
  intervalMs = 10 * 60_000,
): () => void {
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      const r = await sweepExpired(db.prisma, clock.now(), config.unusedClientTtl);
      const total = Object.values(r).reduce((a, b) => a + b, 0);
      if (total > 0) logger.info({ swept: r }, 'swept expired rows');
    } catch (err) {
      logger.warn({ err: { message: (err as Error).message } }, 'sweep failed; will retry');
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
