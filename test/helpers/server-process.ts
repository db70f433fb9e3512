// Real Latchkey server processes (`node dist/main.js`, exactly what `npm start` and the container run), for tests
// about start-up, shutdown and what two processes do to one database. dist/ is built by `npm test`.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/paths.ts';

export const MAIN_JS = join(PACKAGE_ROOT, 'dist', 'main.js');

// Configuration the test runner's own environment must not leak into a spawned server.
const CONFIG_VARIABLES = ['ISSUER', 'PORT', 'HOST', 'DATABASE_URL', 'DATA_DIR', 'LOG_LEVEL'];

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  readonly child: ChildProcess;
  /** Every JSON log line written to stdout so far. */
  readonly logs: Record<string, unknown>[];
  /** stdout lines that were not JSON, and everything on stderr. */
  output(): string;
  /** Resolves with the base URL once Fastify logs "Server listening at …"; rejects if the process exits first. */
  readonly listening: Promise<string>;
  readonly exited: Promise<Exit>;
  /** Sends SIGTERM and resolves with how the process ended. */
  stop(): Promise<Exit>;
}

export function spawnServer(env: Record<string, string>, timeoutMs = 60_000): ServerProcess {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const name of CONFIG_VARIABLES) delete childEnv[name];
  const child = spawn(process.execPath, [MAIN_JS], {
    cwd: PACKAGE_ROOT,
    env: { ...childEnv, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let text = '';
  let pending = '';
  let onListening: ((url: string) => void) | undefined;

  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      let entry: Record<string, unknown> | undefined;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        text += `${line}\n`;
        continue;
      }
      logs.push(entry);
      const m = /^Server listening at (http:\/\/127\.0\.0\.1:\d+)$/.exec(String(entry.msg ?? ''));
      if (m) onListening?.(m[1]!);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });

  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const output = () => `${text}${pending}`;
  const describe = () =>
    `${logs.map((l) => JSON.stringify(l)).join('\n')}\n${output()}`.trim() || '(no output)';

  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`the server did not listen within ${timeoutMs} ms:\n${describe()}`));
    }, timeoutMs);
    onListening = (url) => {
      clearTimeout(timer);
      resolve(url);
    };
    void exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${e.code ?? e.signal}) before listening:\n${describe()}`));
    });
  });
  // A test that never awaits `listening` (a process expected to fail) must not see an unhandled rejection.
  listening.catch(() => {});

  return {
    child,
    logs,
    output,
    listening,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Polls GET /readyz until it answers 200. */
export async function waitUntilReady(baseUrl: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${baseUrl}/readyz`);
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${baseUrl}/readyz did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}
