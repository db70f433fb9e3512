// The embedded-start row of `npm run bench` (bench/run.ts): `node dist/main.js` with no DATABASE_URL and a fresh
// DATA_DIR, timed from spawn until GET /readyz answers 200 — the first start (the data directory is made from the
// template `npm run build` saves, src/db/template.ts) and a later start on the same directory — plus the server's
// resident memory once ready. For comparison, the database part of a first start without the template (initdb and
// every migration, in this process).
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openEmbedded } from '../src/db/embedded.ts';
import { migrate } from '../src/db/migrate.ts';
import { PACKAGE_ROOT } from '../src/paths.ts';
import { medianOf, type Section, stopAll, waitForLine } from './common.ts';

const RUNS = Number(process.env.BENCH_EMBEDDED_RUNS ?? 3);

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m?.[1] ?? 0) / 1024);
}

async function readyz(url: string): Promise<number> {
  try {
    return (await fetch(`${url}/readyz`)).status;
  } catch {
    return 0;
  }
}

/** Seconds from spawn until /readyz answers 200, and the RSS then. */
async function timedStart(dataDir: string): Promise<{ s: number; rss: number }> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'info' };
  delete env.DATABASE_URL;
  const started = performance.now();
  const child: ChildProcess = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/main.js')], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const m = await waitForLine(child, /Server listening at (http:\/\/127\.0\.0\.1:\d+)/);
    // The port is open: ask until the database answers too (each try waits for the one before).
    while ((await readyz(m[1]!)) !== 200) {}
    const s = (performance.now() - started) / 1000;
    return { s, rss: rssMb(child.pid!) };
  } finally {
    await stopAll([child]);
  }
}

export async function embeddedRows(): Promise<Section> {
  const first: { s: number; rss: number }[] = [];
  const later: { s: number; rss: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const dir = await mkdtemp(join(tmpdir(), 'latchkey-bench-embedded-'));
    try {
      first.push(await timedStart(dir));
      later.push(await timedStart(dir));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    console.log(
      `embedded start ${i + 1}: first ${first[i]!.s.toFixed(2)} s, later ${later[i]!.s.toFixed(2)} s`,
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'latchkey-bench-initdb-'));
  let noTemplate: number;
  try {
    const t = performance.now();
    const db = await openEmbedded({ dataDir: dir, template: null });
    await migrate(db);
    noTemplate = (performance.now() - t) / 1000;
    await db.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const f = medianOf(first.map((x) => x.s));
  const l = medianOf(later.map((x) => x.s));
  const summary = [
    `embedded first start ready in ${f.toFixed(2)} s (median of ${RUNS}; target ≤ 5 s quiet), later starts ${l.toFixed(2)} s (target ≤ 2 s quiet)`,
    `embedded server RSS once ready: ${medianOf(later.map((x) => x.rss))} MB; without the template, initdb and the migrations alone take ${noTemplate.toFixed(1)} s`,
  ];
  const markdown = `## Embedded start

\`node dist/main.js\` with no \`DATABASE_URL\` and a fresh \`DATA_DIR\`, timed from spawn until \`GET /readyz\` answers
200, then stopped and started again on the same directory; ${RUNS} times, each with a new directory.

| start | ${first.map((_, i) => `run ${i + 1}`).join(' | ')} |
| --- | ${first.map(() => '---:').join(' | ')} |
| first (from the template), s | ${first.map((x) => x.s.toFixed(2)).join(' | ')} |
| later, s | ${later.map((x) => x.s.toFixed(2)).join(' | ')} |
| RSS once ready (later start), MB | ${later.map((x) => x.rss).join(' | ')} |

- ${summary.join('\n- ')}
`;
  return { markdown, summary };
}
