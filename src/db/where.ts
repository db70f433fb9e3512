// Where the data lives, in words for messages (the start line, the CLI): never a password. Imports nothing heavy, so
// the server can say it before it loads the database drivers.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** postgres://user@host:port/db — the URL without its password or parameters. */
export function describeUrl(raw: string): string {
  try {
    const url = new URL(raw);
    const user = url.username ? `${decodeURIComponent(url.username)}@` : '';
    return `PostgreSQL ${url.protocol}//${user}${url.host}${url.pathname}`;
  } catch {
    return 'PostgreSQL (DATABASE_URL)';
  }
}

/** Whether DATA_DIR already holds an embedded database (PGlite creates PG_VERSION when it initialises one). */
export function embeddedDatabaseExists(dataDir: string): boolean {
  return existsSync(join(resolve(dataDir), 'pgdata', 'PG_VERSION'));
}
