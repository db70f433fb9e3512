// What the server says and checks before it loads anything heavy (src/main.ts imports only this and the
// configuration): its first line, within a moment of the start, and whether it can listen where it is told to, before
// the database opens (a busy port is then one line, not a stack trace after seconds of database work).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { Config } from './config.ts';
import { describeUrl, embeddedDatabaseExists } from './db/where.ts';
import { PACKAGE_ROOT } from './paths.ts';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

function address(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The plain first line: the version, where the data lives, what the start is about to do, and where it listens. */
export function startLine(config: Config, version: string): string {
  const listen = config.port === 0 ? `a free port on ${config.host}` : address(config.host, config.port);
  let data: string;
  if (config.databaseUrl) {
    data = `using ${describeUrl(config.databaseUrl)}`;
  } else {
    const dir = resolve(config.dataDir);
    data = embeddedDatabaseExists(dir)
      ? `opening the embedded database in ${dir}`
      : `first start: creating the embedded database in ${dir} (this takes a few seconds)`;
  }
  return `latchkey ${version} is starting: ${data}; then listening on ${listen} for ${config.issuer}`;
}

/** One line that says why the server cannot listen at host:port and what to change (`names`: which variables). */
export function listenProblem(
  err: NodeJS.ErrnoException,
  host: string,
  port: number,
  names = { host: 'HOST', port: 'PORT' },
): string {
  const where = `cannot listen on ${address(host, port)}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return `${where}: the port is in use (by another program, or a Latchkey already running). Stop it, or set ${names.port} to a free port.`;
    case 'EACCES':
      return `${where}: permission denied (ports below 1024 need privileges). Set ${names.port} to 1024 or above.`;
    case 'EADDRNOTAVAIL':
      return `${where}: ${host} is not an address of this machine. Set ${names.host} to one of its addresses (127.0.0.1, or 0.0.0.0 for all).`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${where}: the host name ${host} does not resolve. Set ${names.host} to an address of this machine.`;
    default:
      return `${where}: ${err.message}`;
  }
}

/** Whether host:port can be listened on now: undefined when it can, else the one-line problem. Holds nothing. */
export function checkListenAddress(
  host: string,
  port: number,
  names?: Parameters<typeof listenProblem>[3],
): Promise<string | undefined> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => done(listenProblem(err, host, port, names)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => done(undefined)));
  });
}

/** Whether `err` is a failure to listen (as Node's net module reports it) rather than anything else. */
export function isListenError(err: unknown): err is NodeJS.ErrnoException {
  const e = err as NodeJS.ErrnoException | null;
  return (
    typeof e?.code === 'string' &&
    ['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'].includes(e.code) &&
    (e.syscall === 'listen' || e.syscall === 'bind' || e.syscall === 'getaddrinfo')
  );
}

/**
 * SIGTERM and SIGINT from the first moment on. A stop asked for before the server can stop cleanly (while it opens,
 * creates or migrates its database) is remembered, and src/server.ts acts on it as soon as it safely can: an
 * embedded database stopped half-way through creating its files could not be opened again.
 */
export class StopSignals {
  /** The first signal received, if any. */
  requested: string | undefined;
  private handler: ((signal: string) => void) | undefined;

  constructor() {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => this.receive(signal));
  }

  private receive(signal: string): void {
    this.requested ??= signal;
    this.handler?.(signal);
  }

  /** Calls `handler` for every signal from now on, and at once for one already received. */
  onStop(handler: (signal: string) => void): void {
    this.handler = handler;
    if (this.requested) handler(this.requested);
  }
}
