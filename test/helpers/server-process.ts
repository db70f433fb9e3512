// Real processes for tests: the server as `npm start` and the container run it (`node dist/main.js`; dist/ is built
// by `npm test`), the `latchkey` command as an operator runs it, and temporary directories. Tests wait on what these
// processes say (a log line, an exit), never on fixed sleeps.
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFile, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { CONFIG_VARIABLES } from '../../src/config.ts';
import { PACKAGE_ROOT } from '../../src/paths.ts';

export const ROOT = PACKAGE_ROOT;

/** The start command of `npm start` and of the container (container.test.ts holds both to it). */
export const START_COMMAND = ['node', 'dist/main.js'] as const;
export const CLI_JS = join(ROOT, 'bin', 'latchkey.js');

/** Every variable src/config.ts declares (its configuration table). */
export function configVariables(): string[] {
  return CONFIG_VARIABLES.map((v) => v.name).sort();
}

/**
 * The test runner's environment without any Latchkey configuration, plus `extra`. In the package folder, where a
 * developer may keep a `.env`, the variables are set empty rather than removed: a real variable wins over the
 * file, and empty means unset, so that file cannot reach a test. Elsewhere (a test's own folder) they are removed.
 */
export function cleanEnv(extra: Record<string, string> = {}, cwd = ROOT): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of configVariables()) {
    if (cwd === ROOT) env[name] = '';
    else delete env[name];
  }
  return { ...env, ...extra };
}

const live = new Set<ChildProcess>();

/** Ends `child` with the test file, however the file ends (see below). */
export function endWithTests<T extends ChildProcess>(child: T): T {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

// A test file the runner stops (its --test-timeout, Ctrl-C) gets SIGTERM and runs no `after` hook: without this its
// servers and commands would run on as orphans, loading the machine that every later test shares.
// Servers started by `npm start` (npmStart), by pid: killing npm with SIGKILL would leave them running.
const npmServers = new Set<number>();
/** Set once the file ends its processes: a server killed then was asked to stop. */
let ending = false;
const killLive = () => {
  ending = true;
  for (const child of live) child.kill('SIGKILL');
  for (const pid of npmServers) killQuietly(pid);
};

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
process.once('exit', killLive);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    killLive();
    process.kill(process.pid, signal); // the default action, now that this listener is gone
  });
}

// A failing test must not leave processes behind: they would hold ports and data directories, and their open pipes
// would keep the test file from ever finishing. Registered on the file's root test by importing this module.
after(async () => {
  ending = true;
  for (const pid of npmServers) killQuietly(pid);
  await Promise.all(
    [...live].map(
      (child) =>
        new Promise((resolve) => {
          child.once('exit', resolve);
          child.kill('SIGKILL');
        }),
    ),
  );
});

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type LogLine = Record<string, unknown>;

export interface ServerProcess {
  readonly child: ChildProcess;
  /** Everything written to stdout so far (pino's JSON lines). */
  stdout(): string;
  stderr(): string;
  /** stdout lines that are not JSON, and everything on stderr. */
  output(): string;
  /** The parsed JSON log lines so far. */
  logs(): LogLine[];
  /**
   * Resolves with the first log line (already written or still to come) that `match` accepts, or whose `msg` is
   * `match`; rejects if the process ends first or after `timeoutMs`.
   */
  logged(match: string | ((line: LogLine) => boolean), timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the base URL from Fastify's "Server listening at …" line; rejects if the process ends first. */
  readonly listening: Promise<string>;
  readonly exited: Promise<Exit>;
  /** Sends `signal` (default SIGTERM) if the process still runs and resolves with how it ended. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
}

export interface SpawnOptions {
  /** Variables to set; one given as undefined is left out (e.g. PORT, so that a `.env` file's applies). */
  env?: Record<string, string | undefined>;
  /** The working directory: the package (as in the container's WORKDIR) unless a test needs another. */
  cwd?: string;
  /**
   * How long `listening` (and `logged`) may wait before rejecting with the output so far: by default just under the
   * runner's --test-timeout (240 s), so a slow start on a loaded machine still passes and a stuck one says why.
   */
  timeoutMs?: number;
  /**
   * Run `npm start` in cwd instead (cwd then needs the package.json: npmStartDir makes one), as an operator does;
   * `child` is then npm's process, with the server as its child.
   */
  npmStart?: boolean;
}

/** Starts START_COMMAND (with dist/main.js made absolute when cwd is not the package) on a port of its choosing. */
export function spawnServer({
  env = {},
  cwd = ROOT,
  timeoutMs = 230_000,
  npmStart = false,
}: SpawnOptions = {}): ServerProcess {
  const script = cwd === ROOT ? START_COMMAND[1] : join(ROOT, START_COMMAND[1]);
  const childEnv = cleanEnv({ PORT: '0', ...env } as Record<string, string>, cwd);
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete childEnv[name];
  // START_COMMAND[0] is `node`: the very node running the tests (Node 20 or 24 in CI).
  const child = npmStart
    ? spawn('npm', ['start'], {
        cwd,
        env: { ...childEnv, npm_config_update_notifier: 'false' },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    : spawn(process.execPath, [script], { cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  endWithTests(child);
  let out = '';
  let err = '';
  let text = '';
  let partial = '';
  const lines: LogLine[] = [];
  const watchers = new Set<(line: LogLine) => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    partial += chunk;
    const complete = partial.split('\n');
    partial = complete.pop()!;
    for (const raw of complete) {
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        text += `${raw}\n`;
        continue;
      }
      lines.push(line);
      if (npmStart && typeof line.pid === 'number' && line.pid !== child.pid) {
        if (line.msg === 'stopped') npmServers.delete(line.pid);
        else npmServers.add(line.pid);
      }
      for (const w of [...watchers]) w(line);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  let stopAsked = false;
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
      // A server that was serving and failed or was killed with nobody asking: the test that follows sees only
      // ECONNREFUSED, so say how it ended and what it wrote last.
      if (
        !stopAsked &&
        !ending &&
        (code !== 0 || signal) &&
        lines.some((l) => l.msg === 'latchkey is ready')
      ) {
        process.stderr.write(
          `spawnServer: the server (pid ${child.pid}) ended by itself after it was ready (${code ?? signal})\n` +
            `${describe().slice(-4000)}\n`,
        );
      }
    });
  });
  const describe = () => `stdout:\n${out}\nstderr:\n${err}`;

  const logged = (match: string | ((line: LogLine) => boolean), ms = timeoutMs): Promise<LogLine> => {
    const accepts = typeof match === 'string' ? (l: LogLine) => l.msg === match : match;
    const seen = lines.find(accepts);
    if (seen) return Promise.resolve(seen);
    const what = typeof match === 'string' ? `"${match}"` : 'the awaited line';
    return new Promise<LogLine>((resolve, reject) => {
      const finish = (fn: () => void) => {
        clearTimeout(timer);
        watchers.delete(watch);
        fn();
      };
      const watch = (line: LogLine) => {
        if (accepts(line)) finish(() => resolve(line));
      };
      const timer = setTimeout(
        () =>
          finish(() => reject(new Error(`the server did not log ${what} within ${ms} ms\n${describe()}`))),
        ms,
      );
      watchers.add(watch);
      void exited.then((e) =>
        finish(() =>
          reject(new Error(`the server ended (${e.code ?? e.signal}) before logging ${what}\n${describe()}`)),
        ),
      );
    });
  };

  const listening = logged((l) => /^Server listening at http:\/\//.test(String(l.msg ?? ''))).then((l) =>
    String(l.msg).slice('Server listening at '.length).replace('0.0.0.0', '127.0.0.1'),
  );
  listening.catch(() => {}); // a process expected to fail is never awaited for this
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    output: () => `${text}${partial}${err}`,
    logs: () => [...lines],
    logged,
    listening,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      stopAsked = true;
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * Resolves once the server has logged that it is ready and GET /readyz answers 200. A 503 is asked again at once,
 * a few times: each try waits on the answer to the one before (the database ping has its own 2 s bound).
 */
export async function waitUntilReady(server: ServerProcess, attempts = 5): Promise<string> {
  const url = await server.listening;
  await server.logged('latchkey is ready');
  let last = 0;
  for (let i = 0; i < attempts; i++) {
    last = await statusOf(url, '/readyz');
    if (last === 200) return url;
  }
  throw new Error(`${url}/readyz answered ${last}, not 200, ${attempts} times in a row`);
}

export function parseLogLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/latchkey.js …args` to completion, writing `input` (if any) to its standard input. */
export function runCli(
  args: readonly string[],
  { env = {}, input, cwd = ROOT }: { env?: Record<string, string>; input?: string; cwd?: string } = {},
): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI_JS, ...args], {
    cwd,
    env: cleanEnv(env, cwd),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  endWithTests(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  child.stdin.on('error', () => {}); // a command that exits before reading its input
  child.stdin.end(input ?? '');
  return new Promise((resolve) => {
    child.once('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * A folder where `npm start` runs this package's start script with that folder as the working directory (so its own
 * `.env` and `./data`): a copy of package.json and a link to the built dist/ (whose modules resolve, through the
 * link, from the package itself).
 */
export async function npmStartDir(dir: string): Promise<string> {
  await copyFile(join(ROOT, 'package.json'), join(dir, 'package.json'));
  await symlink(join(ROOT, 'dist'), join(dir, 'dist'), 'dir');
  return dir;
}

/** A temporary directory, removed by the returned function. */
export async function tempDir(prefix = 'latchkey-'): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** GET `path`; the status, or 0 when no connection could be made. */
export async function statusOf(baseUrl: string, path: string): Promise<number> {
  try {
    const res = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/**
 * Asks `probe` until it answers true, at most `attempts` times; between tries it waits for `next()`, an event that
 * can change the answer (a connection reaching a proxy, a log line), never a fixed sleep.
 */
export async function retryOnEvent(
  probe: () => Promise<boolean>,
  next: () => Promise<unknown>,
  attempts = 20,
): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (await probe()) return true;
    if (i < attempts - 1) await next();
  }
  return false;
}
