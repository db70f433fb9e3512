// Shared pieces of `npm run bench` (bench/run.ts): servers as their own processes, autocannon runs, medians.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { PACKAGE_ROOT } from '../src/paths.ts';

export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
export const DURATION = Number(process.env.BENCH_DURATION ?? 8);
export const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

export interface Result {
  name: string;
  /** Requests answered 2xx a second over the measured run: a refusal (a spent or expired code) does not count. */
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** Requests of the measured run answered 2xx, and the run's length in seconds. */
  answered: number;
  seconds: number;
  /** Requests of the warm-up answered 2xx. */
  warmAnswered: number;
  /** CPU of the bench process (autocannon and the request bodies it is given) over the measured run, in cores. */
  loadCores: number;
  /** CPU of the server process per request of the measured run, in µs (when the target names its process). */
  serverCpuUs?: number;
  /** CPU of every PostgreSQL process on the machine per request of the measured run, in µs (when asked for). */
  databaseCpuUs?: number;
}

/** The round with the median throughput. */
export function median(results: Result[]): Result {
  const sorted = [...results].sort((x, y) => x.rps - y.rps);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export function medianOf(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

export const row = (r: Result) =>
  `| ${r.name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${r.errors + r.non2xx} |`;

export const TABLE_HEAD =
  '| target | req/s | p50 ms | p99 ms | errors |\n| --- | ---: | ---: | ---: | ---: |';

export function waitForLine(
  child: ChildProcess,
  pattern: RegExp,
  timeoutMs = 120_000,
): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}: ${buf.slice(-500)}`)),
      timeoutMs,
    );
    const onData = (d: Buffer) => {
      buf += d.toString();
      const m = pattern.exec(buf);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        // Keep draining the output: a full pipe would stall the server's logging, and the server with it.
        child.stdout?.resume();
        resolve(m);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${buf.slice(-500)}`)));
  });
}

export interface Started {
  url: string;
  child: ChildProcess;
}

/** `node dist/main.js` as `npm start` runs it, on a free port. */
export async function startLatchkey(env: Record<string, string>): Promise<Started> {
  // BENCH_CPU_PROFILE=DIR writes a V8 CPU profile of each Latchkey instance there (for finding hot spots).
  const profile = process.env.BENCH_CPU_PROFILE
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE}`]
    : [];
  const child = spawn(process.execPath, [...profile, join(PACKAGE_ROOT, 'dist/main.js')], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', ISSUER: 'http://127.0.0.1:1', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const m = await waitForLine(child, /Server listening at (http:\/\/127\.0\.0\.1:\d+)/);
  return { url: m[1]!, child };
}

/** A TypeScript file of bench/ as its own process that prints its port first (bare.ts, peer.ts). */
export async function startScript(file: string, ipc = false): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(PACKAGE_ROOT, 'bench', file)], {
    stdio: ['ignore', 'pipe', 'ignore', ...(ipc ? (['ipc'] as const) : [])],
  });
  const m = await waitForLine(child, /^(\d+)$/m);
  return { url: `http://127.0.0.1:${m[1]}`, child };
}

export interface LoadTarget {
  name: string;
  url: string;
  path: string;
  headers?: Record<string, string>;
  /** A fixed form body, or one made for each request. */
  body: string | (() => string);
  /** The server's process, to read its CPU time. */
  pid?: number;
  /** Also read the CPU time of every PostgreSQL process (the server uses it). */
  database?: boolean;
}

/** CPU seconds (user + system) `pid` has used so far, from /proc (Linux); 0 when it cannot be read. */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after the command's closing parenthesis: state is the 1st, utime the 12th, stime the 13th, in clock
    // ticks (USER_HZ, 100 a second on Linux).
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds of every process named `postgres` now, by pid (Linux; a backend started later counts from 0). */
export function postgresCpu(): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres') out.set(pid, cpuSeconds(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU seconds the postgres processes used since `before` (postgresCpu()). */
export function postgresCpuSince(before: Map<number, number>): number {
  let total = 0;
  for (const [pid, s] of postgresCpu()) total += s - (before.get(pid) ?? 0);
  return total;
}

/**
 * A warm-up run, then the measured run, with CONNECTIONS connections; `between` runs after the warm-up, given its
 * average rate and that of its fastest second (a fresh server warms up during it: the average says little).
 */
export async function load(
  t: LoadTarget,
  duration = DURATION,
  warmup = WARMUP,
  between?: (warmRps: number, warmPeakRps: number) => Promise<void>,
): Promise<Result> {
  const { body } = t;
  const opts = {
    url: `${t.url}${t.path}`,
    method: 'POST' as const,
    connections: CONNECTIONS,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...t.headers },
    ...(typeof body === 'string'
      ? { body }
      : {
          requests: [
            {
              setupRequest: (req: autocannon.Request) => {
                req.body = body();
                return req;
              },
            },
          ],
        }),
  };
  let warmAnswered = 0;
  if (warmup > 0) {
    const warm = await autocannon({ ...opts, duration: warmup });
    warmAnswered = warm['2xx'];
    await between?.(warm.requests.average, warm.requests.max);
  }
  const cpu0 = process.cpuUsage();
  const server0 = t.pid ? cpuSeconds(t.pid) : 0;
  const database0 = t.database ? postgresCpu() : undefined;
  const r = await autocannon({ ...opts, duration });
  const cpu = process.cpuUsage(cpu0);
  const server = t.pid ? cpuSeconds(t.pid) - server0 : 0;
  const database = database0 ? postgresCpuSince(database0) : 0;
  return {
    name: t.name,
    rps: r['2xx'] / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors,
    non2xx: r.non2xx,
    answered: r['2xx'],
    seconds: r.duration,
    warmAnswered,
    loadCores: (cpu.user + cpu.system) / 1e6 / r.duration,
    ...(t.pid && r['2xx'] > 0 ? { serverCpuUs: (server * 1e6) / r['2xx'] } : {}),
    ...(database0 && r['2xx'] > 0 ? { databaseCpuUs: (database * 1e6) / r['2xx'] } : {}),
  };
}

/**
 * Resident (VmRSS) and proportional (Pss: shared pages split between sharers) memory of `pid`, in kB, and the part of
 * the Pss in shared memory (Pss_Shmem: for Postgres, its shared buffers and other shared structures).
 */
export function memoryKb(pid: number): { rss: number; pss: number; shmem: number } {
  const read = (file: string, field: string) => {
    try {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(
        readFileSync(`/proc/${pid}/${file}`, 'utf8'),
      );
      return Number(m?.[1] ?? 0);
    } catch {
      return 0; // gone, or not ours to read
    }
  };
  return {
    rss: read('status', 'VmRSS'),
    pss: read('smaps_rollup', 'Pss'),
    shmem: read('smaps_rollup', 'Pss_Shmem'),
  };
}

/** Resident memory of every postgres process on this machine, in MB (ps; 0 where ps finds none). */
export function postgresRssMb(): number {
  try {
    const out = execFileSync('ps', ['-C', 'postgres', '-o', 'rss='], { encoding: 'utf8' });
    return Math.round(out.split('\n').reduce((a, l) => a + (Number(l.trim()) || 0), 0) / 1024);
  } catch {
    return 0;
  }
}

export function stopAll(children: ChildProcess[]): Promise<void> {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  return Promise.all(
    children.map((c) =>
      c.exitCode !== null ? undefined : new Promise<void>((resolve) => c.once('exit', () => resolve())),
    ),
  ).then(() => undefined);
}

export interface Section {
  /** Markdown for docs/benchmarks.md. */
  markdown: string;
  /** One line per figure, for the console and the summary. */
  summary: string[];
  /** A behaviour check failed (not a speed target: those are reported, never enforced). */
  failed?: boolean;
}
