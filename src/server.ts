// The server process after its first line (src/main.ts): database → migrations → listen; graceful shutdown.
// SIGTERM/SIGINT: stop accepting, finish in-flight requests, close the database, exit 0.
import pino from 'pino';
import { buildApp } from './app.ts';
import { applyDeclaredResourceServers } from './bootstrap.ts';
import type { Config } from './config.ts';
import { DataDirInUseError } from './db/embedded.ts';
import { MigrationError, migrate } from './db/migrate.ts';
import { openDatabase } from './db/open.ts';
import { systemClock } from './lib/clock.ts';
import { prettyDestination } from './log-pretty.ts';
import { loggerOptions } from './logger.ts';
import { listenMetrics } from './metrics/http.ts';
import { METRICS_NAMES } from './metrics/names.ts';
import { isListenError, listenProblem, type StopSignals } from './startup.ts';
import { createStores } from './store/index.ts';
import { startSweeper } from './sweeper.ts';

/** Ends the process after one plain line on stderr: a failure the operator fixes from the line alone. */
function fail(line: string, status: number): never {
  process.stderr.write(`latchkey: ${line}\n`);
  process.exit(status);
}

export async function startServer(config: Config, signals: StopSignals): Promise<void> {
  const options = loggerOptions(config.logLevel);
  const logger =
    config.logFormat === 'pretty' ? pino(options, prettyDestination(process.stdout)) : pino(options);

  // SIGTERM/SIGINT while the database is opened and migrated waits for that to finish (StopSignals).
  let stop: ((signal: string) => Promise<void>) | undefined;
  signals.onStop((signal) => {
    if (stop) void stop(signal);
    else logger.info({ signal }, 'stop requested: stopping once the database is ready');
  });

  let db: Awaited<ReturnType<typeof openDatabase>>;
  try {
    db = await openDatabase(config, logger);
  } catch (err) {
    if (err instanceof DataDirInUseError) {
      fail(
        `the embedded database in ${err.dataDir} is in use by process ${err.pid}, most likely a Latchkey already ` +
          `running there. Use that server (the latchkey command works alongside it), stop it first ` +
          `(kill ${err.pid}), or give this one another DATA_DIR.`,
        1,
      );
    }
    throw err;
  }

  const stores = createStores(db);
  try {
    const result = await migrate(db, {
      onApplied: (name) => logger.info({ migration: name }, 'migration applied'),
      onChecksumMismatch: (name) =>
        logger.warn({ migration: name }, 'an applied migration was modified after it was applied'),
    });
    logger.info(
      { applied: result.applied.length, total: result.applied.length + result.alreadyApplied.length },
      'database migrated',
    );
  } catch (err) {
    logger.fatal(
      { migration: err instanceof MigrationError ? err.migration : undefined },
      (err as Error).message,
    );
    await db.close().catch(() => {});
    process.exit(1);
  }

  try {
    const declared = await applyDeclaredResourceServers(stores, config);
    if (declared.length)
      logger.info({ resourceServers: declared }, 'resource servers from RESOURCE_SERVERS applied');
    // A provider removed from the configuration revokes nothing (a typo must not sign everyone out): say so.
    const orphaned = [...(await stores.upstream.identityCounts()).keys()].filter(
      (id) => !config.upstreamProviders.some((p) => p.id === id),
    );
    if (orphaned.length)
      logger.warn({ providers: orphaned }, 'upstream identities exist for providers that are not configured');
  } catch (err) {
    logger.fatal((err as Error).message);
    await db.close().catch(() => {});
    process.exit(2);
  }
  // The CLI prints Latchkey's URLs (e.g. the introspection endpoint) from this, not from its own environment.
  await stores.settings.set('issuer', config.issuer, systemClock.now());
  if (signals.requested) {
    await db.close();
    logger.info({ signal: signals.requested }, 'stopped');
    process.exit(0);
  }

  const app = await buildApp({ config, db, logger });
  await db.serveSocket?.();
  const stopSweeper = startSweeper(db, config, systemClock, logger, undefined, app.latchkey.metrics);

  let stopping = false;
  stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeout * 1000);
    force.unref();
    try {
      stopSweeper();
      await app.close(); // stops accepting, waits for in-flight requests
      await db.close();
      logger.info('stopped');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'error during shutdown');
      process.exit(1);
    }
  };
  if (signals.requested) return void stop(signals.requested); // asked for while the app was being built

  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    // Checked before the database opened (src/main.ts); something took the address since.
    if (!isListenError(err)) throw err;
    stopSweeper();
    await db.close().catch(() => {});
    fail(listenProblem(err, config.host, config.port), 1);
  }
  const metricsHost = config.metricsHost ?? config.host;
  try {
    const metricsAt = await listenMetrics(app);
    if (metricsAt) logger.info({ metrics: `${metricsAt}/metrics` }, 'metrics listener ready');
  } catch (err) {
    if (!isListenError(err)) throw err;
    stopSweeper();
    await app.close().catch(() => {});
    await db.close().catch(() => {});
    fail(`metrics listener: ${listenProblem(err, metricsHost, config.metricsPort ?? 0, METRICS_NAMES)}`, 1);
  }
  logger.info({ issuer: config.issuer, database: db.kind }, 'latchkey is ready');
}
