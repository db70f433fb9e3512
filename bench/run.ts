// npm run bench: Latchkey against a bare Fastify route and against node-oidc-provider, side by side in the same run,
// and the sweep and embedded-start figures; writes docs/benchmarks.md. BENCH_ROWS (comma-separated: embedded,
// introspect, token, sweep; default all) selects rows; BENCH_ROUNDS, BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS
// shape the load. Every server runs as its own process (Latchkey exactly as `npm start` runs it); autocannon drives
// them from this process over loopback.
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { randomToken } from '../src/lib/crypto.ts';
import { PACKAGE_ROOT } from '../src/paths.ts';
import { createPostgresDatabase } from '../test/helpers/db.ts';
import {
  CONNECTIONS,
  DURATION,
  postgresRssMb,
  ROUNDS,
  type Section,
  type Started,
  startLatchkey,
  startScript,
  stopAll,
  WARMUP,
} from './common.ts';
import { embeddedRows } from './embedded-start.ts';
import { introspectRows } from './introspect.ts';
import { seedLatchkey } from './seed.ts';
import { sweepRows } from './sweep.ts';
import { tokenRows } from './token.ts';

const ALL = ['embedded', 'introspect', 'token', 'sweep'];
const rows = new Set((process.env.BENCH_ROWS ?? ALL.join(',')).split(',').map((s) => s.trim()));
for (const r of rows)
  if (!ALL.includes(r)) throw new Error(`BENCH_ROWS: unknown row ${r} (known: ${ALL.join(', ')})`);

async function serverRows(): Promise<Section[]> {
  const pg = await createPostgresDatabase();
  const started: Started[] = [];
  const start = async (p: Promise<Started>) => {
    const s = await p;
    started.push(s);
    return s;
  };
  try {
    const a = await start(startLatchkey({ DATABASE_URL: pg.url }));
    const seeded = await seedLatchkey(pg.url);
    const out: Section[] = [];
    try {
      if (rows.has('introspect')) {
        const b = await start(startLatchkey({ DATABASE_URL: pg.url }));
        const metricsToken = randomToken(32);
        const c = await start(startLatchkey({ DATABASE_URL: pg.url, METRICS_TOKEN: metricsToken }));
        const d = await start(startLatchkey({ DATABASE_URL: pg.url }));
        const bare = await start(startScript('bare.ts'));
        out.push(await introspectRows({ a, b, c, d, bare, metricsToken }, seeded));
      }
      if (rows.has('token')) {
        const peer = await start(startScript('peer.ts', true));
        out.push(await tokenRows(a, peer, seeded));
      }
    } finally {
      await seeded.close();
    }
    const rss = postgresRssMb();
    out.push({
      markdown: `## PostgreSQL memory\n\nResident memory of every \`postgres\` process (ps), summed, after the rows above with their servers still\nconnected: **${rss} MB** (target ≤ 200 MB).\n`,
      summary: [`PostgreSQL RSS after the bench: ${rss} MB (target ≤ 200 MB)`],
    });
    return out;
  } finally {
    await stopAll(started.map((s) => s.child));
    await pg.drop();
  }
}

const sections: Section[] = [];
if (rows.has('embedded')) sections.push(await embeddedRows());
if (rows.has('introspect') || rows.has('token')) sections.push(...(await serverRows()));
if (rows.has('sweep')) sections.push(await sweepRows());

const summary = sections.flatMap((s) => s.summary);
for (const line of summary) console.log(line);
const doc = `# Benchmarks

Produced by \`npm run bench\` (bench/run.ts; rows: ${[...rows].join(', ')}) on ${new Date().toISOString().slice(0, 10)}:
${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version},
PostgreSQL on 127.0.0.1. autocannon, ${CONNECTIONS} connections, from the bench process; each server is its own
process on the same machine. ${ROUNDS} rounds alternate between the targets (each round: ${WARMUP} s warm-up, ${DURATION} s
measured per target). The numbers are from a shared 2-core machine and move by ±15% or more between runs (more
while other work runs on it); a ratio, measured within one run, is the figure to compare.

- ${summary.join('\n- ')}

${sections.map((s) => s.markdown).join('\n')}`;
await writeFile(join(PACKAGE_ROOT, 'docs/benchmarks.md'), doc);
if (sections.some((s) => s.failed)) process.exitCode = 1;
