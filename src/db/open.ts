// Chooses the database from configuration: DATABASE_URL → Postgres; otherwise the embedded one under DATA_DIR.
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { type Database, openPostgres } from './database.ts';
import { type EmbeddedDatabase, openEmbedded } from './embedded.ts';

export type OpenedDatabase = (Database & { serveSocket?: undefined }) | EmbeddedDatabase;

export async function openDatabase(config: Config, logger?: Logger): Promise<OpenedDatabase> {
  if (config.databaseUrl)
    return openPostgres({ url: config.databaseUrl, logger, poolSize: config.databasePoolSize });
  return openEmbedded({ dataDir: config.dataDir, logger });
}
