// Embedded PostgreSQL (PGlite) under DATA_DIR. PGlite does not guard its directory, and two processes writing one
// directory silently lose one side's writes, so exactly one process may open it:
// - the opener takes DATA_DIR/latchkey.lock (created exclusively, holding its pid); a live holder makes any other
//   opener fail at once with a message, including a second opener in the same process; a lock left by a dead
//   process is taken over;
// - the server then serves its database to local commands over a Unix socket, DATA_DIR/.s.PGSQL.5432, which
//   `pg` reaches with host=DATA_DIR. The CLI goes through that socket whenever a server is running, and
//   socket-gate.ts makes its sessions and the server's own queries take turns.
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Logger } from 'pino';
import type { Database } from './database.ts';
import { pgliteDatabase } from './pglite.ts';
import { gateSocketSessions, type SocketGate } from './socket-gate.ts';
import { templatePath } from './template.ts';

export const LOCK_FILE = 'latchkey.lock';
export const SOCKET_PORT = 5432;
export const SOCKET_FILE = `.s.PGSQL.${SOCKET_PORT}`;

export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(
      `the embedded database in ${dataDir} is in use by process ${pid}. ` +
        'Stop that process first; the latchkey CLI reaches a running server through its socket.',
    );
    this.name = 'DataDirInUseError';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Directories this process holds. A lock file naming our own pid is stale unless listed here: in a container the
// restarted server often gets the pid its crashed predecessor had.
const heldHere = new Set<string>();

/** Takes the data directory's lock or throws DataDirInUseError. Returns the release function. */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const dir = resolve(dataDir);
  if (heldHere.has(dir)) throw new DataDirInUseError(dir, process.pid);
  heldHere.add(dir);
  try {
    return await takeLockFile(dir);
  } catch (err) {
    heldHere.delete(dir);
    throw err;
  }
}

async function takeLockFile(dataDir: string): Promise<() => Promise<void>> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await rm(path, { force: true });
        heldHere.delete(dataDir);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new DataDirInUseError(dataDir, holder);
      }
      // The holder is gone (or the file is unreadable): a stale lock from a crash. Take it over.
      await rm(path, { force: true });
    }
  }
  throw new Error(`could not take the lock ${path}`);
}

export interface EmbeddedOptions {
  dataDir: string;
  /** Where the first start and the socket are announced (the server's logger; the CLI's stderr). */
  logger?: Pick<Logger, 'info'> | undefined;
  /** The migrated data-directory template a first start loads (default: the one `npm run build` saves, if there);
   * null: none, run initdb. */
  template?: string | null | undefined;
}

export interface EmbeddedDatabase extends Database {
  /** Serves this database to local commands over DATA_DIR/.s.PGSQL.5432. */
  serveSocket(): Promise<void>;
}

/**
 * PGlite's own start parameters, and shared_buffers at 32 MB instead of postgresql.conf's 128 MB: the buffers live in
 * the process's WebAssembly memory, an embedded Latchkey's tables fit many times over, and the server's resident
 * size once ready drops by about 110 MB (bench/embedded-start.ts records it).
 */
export const EMBEDDED_START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=32MB'];

/**
 * How much code a WebAssembly function runs before V8 compiles it again with its optimising compiler (V8's
 * `--wasm-tiering-budget`; Node 20's default is 1,800,000, Node 24's 13,000,000). PostgreSQL's start, the migration
 * check and Prisma's first queries each run many functions of PGlite and of Prisma's query compiler a little; at
 * Node 20's default enough of them cross the budget that optimising them costs the start about half a second.
 * 100 times the budget leaves the start on the baseline compiler; functions that stay hot are still optimised once
 * requests come in. Measured on a busy 2-core AMD EPYC (bench/embedded-start.ts, two alternating pairs of runs, Node
 * 20): later starts 2.0 and 2.4 s instead of 2.6 and 2.8 s, first starts 3.4 and 3.7 s instead of 4.2 and 4.4 s; on
 * Node 24 the start's phases took ~0.1 s less. A PGlite insert-and-select loop ran as fast as before once past its
 * first thousand statements. The flag is process-wide and applies to modules compiled after it is set, so it is set
 * before the database compiles its first one.
 */
const WASM_TIERING_BUDGET = 180_000_000;

/** Sets the tiering budget above (again is harmless). */
function deferWasmTierUp(): void {
  setFlagsFromString(`--wasm-tiering-budget=${WASM_TIERING_BUDGET}`);
}

/**
 * Opens the cluster in `pgdata`. A first start (no cluster there yet) says so, then loads the template when there is
 * one, or runs initdb.
 */
async function openCluster(
  dir: string,
  logger: Pick<Logger, 'info'> | undefined,
  template: string | null,
): Promise<PGlite> {
  const pgdata = join(dir, 'pgdata');
  if (await exists(join(pgdata, 'PG_VERSION'))) {
    return PGlite.create(pgdata, { startParams: EMBEDDED_START_PARAMS });
  }
  const saved = template ? await readFile(template).catch(() => undefined) : undefined;
  logger?.info(
    { dataDir: dir, template: saved ? template : undefined },
    `initialising embedded database in ${dir} (first start)…`,
  );
  const started = performance.now();
  const pglite = await PGlite.create(pgdata, {
    startParams: EMBEDDED_START_PARAMS,
    ...(saved ? { loadDataDir: new Blob([saved]) } : {}),
  });
  logger?.info({ ms: Math.round(performance.now() - started) }, 'embedded database initialised');
  return pglite;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export async function openEmbedded({
  dataDir,
  logger,
  template,
}: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dir = resolve(dataDir);
  const release = await lockDataDir(dir);
  deferWasmTierUp();
  let socketServer: PGLiteSocketServer | undefined;
  let gate: SocketGate | undefined;
  let pglite: PGlite;
  try {
    pglite = await openCluster(dir, logger, template === undefined ? templatePath() : template);
  } catch (err) {
    await release();
    throw err;
  }
  const socketPath = join(dir, SOCKET_FILE);
  const db = pgliteDatabase(pglite, async () => {
    await socketServer?.stop();
    // A client cut off inside a transaction must not keep the session (close() below waits for it).
    await gate?.close();
    await rm(socketPath, { force: true });
    if (!pglite.closed) await pglite.close();
    await release();
  });
  return {
    ...db,
    kind: db.kind,
    prisma: db.prisma,
    async serveSocket() {
      // A socket file left by a crashed server would make listen() fail; we hold the lock, so it is ours to remove.
      await rm(socketPath, { force: true });
      gate = gateSocketSessions(pglite);
      socketServer = new PGLiteSocketServer({ db: gate.db, path: socketPath, maxConnections: 16 });
      await socketServer.start();
      logger?.info({ socket: socketPath }, 'embedded database open to local commands');
    },
  };
}

/** True when a server holding `dataDir` is serving its socket. */
export async function socketAvailable(dataDir: string): Promise<boolean> {
  try {
    const s = await stat(join(resolve(dataDir), SOCKET_FILE));
    return s.isSocket();
  } catch {
    return false;
  }
}
