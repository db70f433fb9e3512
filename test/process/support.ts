// Real processes for the process-level tests: the server as `npm start` and the container run it, the `latchkey`
// command as an operator runs it, temporary directories, free ports and a TCP proxy the tests can cut.
// (test/helpers/server-process.ts serves other suites; these tests also need a working directory of their own, the
// raw output for the redaction checks, and an environment cleared of every variable src/config.ts reads.)
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { PACKAGE_ROOT } from '../../src/paths.ts';

export const ROOT = PACKAGE_ROOT;

/** The start command of `npm start` and of the container (container.test.ts holds both to it). */
export const START_COMMAND = ['node', 'dist/main.js'] as const;
export const CLI_JS = join(ROOT, 'bin', 'latchkey.js');

/** Every variable src/config.ts reads, found in its source: `str(env, 'NAME')`, `int(env, 'NAME', …)`, … */
export function configVariables(): string[] {
  const source = readFileSync(join(ROOT, 'src', 'config.ts'), 'utf8');
  const names = [...source.matchAll(/\b(?:str|int|bool|list)\(env, '([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1]!);
  return [...new Set(names)].sort();
}

/** The test runner's environment without any Latchkey configuration, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of configVariables()) delete env[name];
  return { ...env, ...extra };
}

const live = new Set<ChildProcess>();
// A failing test must not leave processes behind: they would hold ports and data directories, and their open pipes
// would keep the test file from ever finishing. Registered on the file's root test by importing this module.
after(async () => {
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

export interface ServerProcess {
  readonly child: ChildProcess;
  /** Everything written to stdout so far (pino's JSON lines). */
  stdout(): string;
  stderr(): string;
  /** The parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /** Resolves with the base URL from Fastify's "Server listening at …" line; rejects if the process ends first. */
  readonly listening: Promise<string>;
  readonly exited: Promise<Exit>;
  /** Sends `signal` (default SIGTERM) if the process still runs and resolves with how it ended. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  /** The working directory: the package (as in the container's WORKDIR) unless a test needs another. */
  cwd?: string;
}

/** Starts START_COMMAND (with dist/main.js made absolute when cwd is not the package). */
export function spawnServer({ env = {}, cwd = ROOT }: SpawnOptions = {}): ServerProcess {
  const script = cwd === ROOT ? START_COMMAND[1] : join(ROOT, START_COMMAND[1]);
  // START_COMMAND[0] is `node`: the very node running the tests (Node 20 or 24 in CI).
  const child = spawn(process.execPath, [script], {
    cwd,
    env: cleanEnv({ PORT: '0', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  let err = '';
  let onLine: ((line: string) => void) | undefined;
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) onLine?.(line);
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  const describe = () => `stdout:\n${out}\nstderr:\n${err}`;
  const listening = new Promise<string>((resolve, reject) => {
    onLine = (line) => {
      const m = /"msg":"Server listening at (http:\/\/[^"]+)"/.exec(line);
      if (m) resolve(m[1]!.replace('0.0.0.0', '127.0.0.1'));
    };
    void exited.then((e) =>
      reject(new Error(`the server ended (${e.code ?? e.signal}) before listening\n${describe()}`)),
    );
  });
  listening.catch(() => {}); // a process expected to fail is never awaited for this
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    logs: () => parseLogLines(out),
    listening,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export function parseLogLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
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
    env: cleanEnv(env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  live.add(child);
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
      live.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A temporary directory, removed by the returned function. */
export async function tempDir(prefix = 'latchkey-'): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Calls `probe` until it returns true, at most `attempts` times, `intervalMs` apart. */
export async function pollUntil(
  probe: () => Promise<boolean>,
  { attempts = 50, intervalMs = 200 }: { attempts?: number; intervalMs?: number } = {},
): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return false;
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

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * A TCP proxy on 127.0.0.1 to `target`, which a test can cut (closing the listener and destroying every open
 * connection, as a network failure would) and restore on the same port.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private isCut = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async open(): Promise<void> {
    this.isCut = false;
    if (this.server) return;
    const server = net.createServer((client) => {
      // While cut, the port stays ours (so no other listener can take it) but every connection is dropped.
      if (this.isCut) {
        client.destroy();
        return;
      }
      const upstream = net.connect(this.targetPort, this.targetHost);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Drops every connection, and every new one until open() is called again. */
  async cut(): Promise<void> {
    this.isCut = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Stops listening altogether. */
  async close(): Promise<void> {
    this.isCut = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  get connections(): number {
    return this.sockets.size;
  }
}
