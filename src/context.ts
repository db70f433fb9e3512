// What every route and service receives: configuration, the database, time, and the stores.
import type { Config } from './config.ts';
import type { Database } from './db/database.ts';
import type { Clock } from './lib/clock.ts';

export interface AppContext {
  readonly config: Config;
  readonly db: Database;
  readonly clock: Clock;
}
