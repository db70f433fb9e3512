// Process entry: config (the environment, over ./.env when present) → database → migrations → listen.
// SIGTERM/SIGINT: stop accepting, finish in-flight requests, close the database, exit 0.
import pino from 'pino';
import { buildApp } from './app.ts';
import { applyDeclaredResourceServers } from './bootstrap.ts';
import { EnvFileError, withEnvFile } from './config/env-file.ts';
import { ConfigError, loadConfig } from './config.ts';
import { DataDirInUseError } from './db/embedded.ts';
import { MigrationError, migrate } from './db/migrate.ts';
import { openDatabase } from './db/open.ts';
import { systemClock } from './lib/clock.ts';
import { loggerOptions } from './logger.ts';
import { createStores } from './store/index.ts';
import { startSweeper } from './sweeper.ts';
import { resolveUpstreamKeys } from './upstream/config.ts';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(withEnvFile(process.env));
    // Upstream token keys: UPSTREAM_TOKEN_KEYS, or the embedded database's key file (generated on first start).
    const keys = resolveUpstreamKeys(config);
    if (keys.length > 0) config = { ...config, upstreamTokenKeys: keys };
  } catch (err) {
    if (err instanceof ConfigError || err instanceof EnvFileError) {
      process.stderr.write(`latchkey: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = pino(loggerOptions(config.logLevel));

  let db: Awaited<ReturnType<typeof openDatabase>>;
  try {
    db = await openDatabase(config, logger);
  } catch (err) {
    if (err instanceof DataDirInUseError) {
      logger.fatal(err.message);
      process.exit(1);
    }
    throw err;
  }

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
    const stores = createStores(db.prisma);
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

  const app = await buildApp({ config, db, logger });
  await db.serveSocket?.();
  const stopSweeper = startSweeper(db, config, systemClock, logger);

  let stopping = false;
  const stop = async (signal: string) => {
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
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  await app.listen({ port: config.port, host: config.host });
  logger.info({ issuer: config.issuer, database: db.kind }, 'latchkey is ready');
}

main().catch((err) => {
  process.stderr.write(`latchkey: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
