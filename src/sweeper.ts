// Runs the sweep now and then in the server process. Every instance may run it: the deletes are idempotent.
// A run stops between batches after RUN_BUDGET_MS; when it left work behind, the next run starts CONTINUE_AFTER_MS
// later instead of at the next interval, so a large backlog drains in bounded slices (README: How it is built).
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { Database } from './db/database.ts';
import type { Clock } from './lib/clock.ts';
import type { Metrics } from './metrics/metrics.ts';
import { sweepAuditEvents } from './store/audit.ts';
import { type SweepCursor, sweepRun } from './store/sweep.ts';

type SweepMetrics = Pick<Metrics, 'sweep'>;

/** How long one run may work before it stops between two batches. */
export const RUN_BUDGET_MS = 5_000;
/** The pause before the next run when a run stopped with work left. */
export const CONTINUE_AFTER_MS = 1_000;

export interface SweepOnceOptions {
  /** Carries the walk over old grants from one run to the next. */
  cursor?: SweepCursor;
  /** Milliseconds this run may work (default RUN_BUDGET_MS). */
  budgetMs?: number;
}

/**
 * One sweep run: logs what it removed (or why it failed) and counts the run (README: Metrics). Never throws.
 * Resolves true when the run finished everything, false when its time ran out (or it failed) with work left.
 */
export async function sweepOnce(
  db: Database,
  config: Pick<Config, 'unusedClientTtl' | 'auditRetention'>,
  clock: Clock,
  logger: Pick<Logger, 'info' | 'warn'>,
  metrics?: SweepMetrics,
  options: SweepOnceOptions = {},
): Promise<boolean> {
  const started = performance.now();
  const until = started + (options.budgetMs ?? RUN_BUDGET_MS);
  try {
    const run = await sweepRun(db.prisma, clock.now(), config.unusedClientTtl, {
      outOfTime: () => performance.now() > until,
      cursor: options.cursor ?? {},
    });
    const { complete } = run;
    const removed = {
      ...run.removed,
      // Old audit events go once the rest is done (a run out of time leaves them to the next one).
      auditEvents: complete ? await sweepAuditEvents(db.prisma, clock.now(), config.auditRetention) : 0,
    };
    metrics?.sweep(removed);
    const total = Object.values(removed).reduce((a, b) => a + b, 0);
    const ms = Math.round(performance.now() - started);
    if (total > 0 || !complete) logger.info({ swept: removed, complete, ms }, 'swept expired rows');
    return complete;
  } catch (err) {
    metrics?.sweep(undefined);
    logger.warn({ err: { message: (err as Error).message } }, 'sweep failed; will retry');
    return true; // retried at the next interval, not at once
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
  let stopped = false;
  let again: NodeJS.Timeout | undefined;
  const cursor: SweepCursor = {};
  const run = async () => {
    if (running || stopped) return;
    running = true;
    let complete = true;
    try {
      complete = await sweepOnce(db, config, clock, logger, metrics, { cursor });
    } finally {
      running = false;
    }
    if (!complete && !stopped) {
      again = setTimeout(() => void run(), CONTINUE_AFTER_MS);
      again.unref();
    }
  };
  const first = setTimeout(() => void run(), 30_000);
  const timer = setInterval(() => void run(), intervalMs);
  first.unref();
  timer.unref();
  return () => {
    stopped = true;
    clearTimeout(first);
    clearTimeout(again);
    clearInterval(timer);
  };
}
