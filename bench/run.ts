// npm run bench: Latchkey against a bare Fastify route and against node-oidc-provider, side by side in the same run,
// and the sweep and embedded-start figures; writes docs/benchmarks.md. BENCH_ROWS (comma-separated: embedded,
// introspect, token, sweep; default all) selects rows; BENCH_ROUNDS, BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS
// shape the load; BENCH_METRICS_ROUNDS (even, default 8) sets the rounds of metrics on against off and
// BENCH_DISTINCT_TOKENS (default 10,000) the least pool of tokens for /introspect (b). Every server runs as its own process (Latchkey exactly as `npm start` runs it); autocannon drives
// them from this process over loopback.
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { openPostgres } from '../src/db/database.ts';
import { PACKAGE_ROOT } from '../src/paths.ts';
import { createPostgresDatabase } from '../test/helpers/db.ts';
import {
  CONNECTIONS,
  DURATION,
  memoryKb,
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

/**
 * PostgreSQL's memory after the rows, their servers still connected: every postgres process on the machine (ps, as
 * the issue measures it; other databases on the server count too), and the server's own processes plus the
 * backends of the bench's database, by RSS and by PSS (shared buffers counted once instead of once per process).
 */
async function postgresMemory(url: string): Promise<Section> {
  const all = postgresRssMb();
  const db = openPostgres({ url, poolSize: 1 });
  // The postmaster is the parent of this connection's backend, asked while the backend still runs.
  const { seen, pids, postmaster } = await db.withConnection(async (c) => {
    const rows = await c.query<{ pid: number; own: boolean; backend: boolean }>(
      `SELECT pid, pid = pg_backend_pid() AS own, backend_type = 'client backend' AS backend FROM pg_stat_activity
       WHERE datname = current_database() OR backend_type <> 'client backend'`,
    );
    const own = rows.find((r) => r.own)?.pid ?? 1;
    // What each of the database's other backends last ran and how long it has been idle: which connections these are.
    const seen = await c.query<{ app: string; state: string; idle_s: number; query: string }>(
      `SELECT application_name AS app, state, round(extract(epoch FROM now() - state_change))::int AS idle_s,
              left(regexp_replace(query, '\\s+', ' ', 'g'), 60) AS query
       FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY idle_s`,
    );
    return {
      seen: seen.map((r) => `${r.app || '(pool)'}, ${r.state} ${r.idle_s} s: \`${r.query.trim()}…\``),
      pids: rows,
      postmaster: execFileSync('ps', ['-o', 'ppid=', '-p', String(own)], { encoding: 'utf8' }).trim(),
    };
  });
  await db.close();
  const mem = [...pids, { pid: Number(postmaster), backend: false }].map((p) => ({
    ...memoryKb(p.pid),
    backend: p.backend,
  }));
  const mb = (kb: number) => Math.round(kb / 1024);
  const ours = {
    rss: mb(mem.reduce((a, m) => a + m.rss, 0)),
    pss: mb(mem.reduce((a, m) => a + m.pss, 0)),
    // The postmaster, checkpointer, writers…: their share is mostly shared_buffers, whoever touched them.
    server: mb(mem.filter((m) => !m.backend).reduce((a, m) => a + m.pss, 0)),
    // Shared memory, however many processes map it, against what each process holds on its own.
    shmem: mb(mem.reduce((a, m) => a + m.shmem, 0)),
  };
  const backends = pids.filter((p) => p.backend).length - 1;
  const line = `PostgreSQL memory after the bench: ${all} MB RSS over every postgres process on the machine; the server's own processes and this database's ${backends} backends: ${ours.rss} MB RSS, ${ours.pss} MB PSS (target ≤ 200 MB), of which the server's own processes ${ours.server} MB and the backends ${ours.pss - ours.server} MB; by kind, shared memory ${ours.shmem} MB and every process's own ${ours.pss - ours.shmem} MB`;
  return {
    markdown: `## PostgreSQL memory\n\nAfter the rows above, their servers still connected. Every \`postgres\` process on the machine (ps, RSS summed;\nother databases of the shared server count too): **${all} MB**. The server's own processes (postmaster, checkpointer,\nwriters…) and the backends of the bench's database: **${ours.rss} MB RSS**, **${ours.pss} MB PSS** (PSS counts each shared\npage once, split between the processes sharing it; RSS counts shared buffers once per process that touched them). Of the PSS, the server's own\nprocesses hold **${ours.server} MB** (mostly shared_buffers, 128 MB by default, whichever process read them in) and the\n${backends} backends **${ours.pss - ours.server} MB**. By kind: shared memory (shared_buffers and the server's other shared\nstructures, counted once whichever processes map it) **${ours.shmem} MB**, and the memory each process holds on its own\n(including its share of the program's pages) **${ours.pss - ours.shmem} MB**.\n\nThe backends by application name, state,\nseconds since their last statement, and that statement:\n\n${seen.map((l) => `- ${l}`).join('\n')}\n`,
    summary: [line],
  };
}

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
        const d = await start(startLatchkey({ DATABASE_URL: pg.url }));
        const bare = await start(startScript('bare.ts'));
        out.push(await introspectRows({ a, b, d, bare, databaseUrl: pg.url }, seeded));
      }
      if (rows.has('token')) {
        const peer = await start(startScript('peer.ts', true));
        out.push(await tokenRows(a, peer, seeded));
      }
    } finally {
      await seeded.close();
    }
    out.push(await postgresMemory(pg.url));
    return out;
  } finally {
    await stopAll(started.map((s) => s.child));
    await pg.drop();
  }
}

const sections: Section[] = [];

/** Writes docs/benchmarks.md from the sections so far: after every part, so a part that fails loses nothing else. */
async function writeDoc(): Promise<void> {
  const summary = sections.flatMap((s) => s.summary);
  const doc = `# Benchmarks

Produced by \`npm run bench\` (bench/run.ts; rows: ${[...rows].join(', ')}) on ${new Date().toISOString().slice(0, 10)}:
${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version},
PostgreSQL on 127.0.0.1. autocannon, ${CONNECTIONS} connections, from the bench process; each server is its own
process on the same machine. ${ROUNDS} round(s) alternate between the targets (each round: ${WARMUP} s warm-up, ${DURATION} s
measured per target). The numbers are from a shared 2-core machine and move by ±15% or more between runs (far more
while other work runs on it); a ratio, measured within one run, is the figure to compare.

- ${summary.join('\n- ')}

${sections.map((s) => s.markdown).join('\n')}`;
  await writeFile(join(PACKAGE_ROOT, 'docs/benchmarks.md'), doc);
}

async function part(name: string, fn: () => Promise<Section[]>): Promise<void> {
  try {
    sections.push(...(await fn()));
  } catch (err) {
    console.error(err);
    sections.push({
      markdown: `## ${name}\n\nFailed: ${(err as Error).message}\n`,
      summary: [`${name}: failed (${(err as Error).message})`],
      failed: true,
    });
  }
  await writeDoc();
}

if (rows.has('embedded')) await part('Embedded start', async () => [await embeddedRows()]);
if (rows.has('introspect') || rows.has('token')) await part('Servers', serverRows);
if (rows.has('sweep')) await part('Sweeping a backlog', async () => [await sweepRows()]);
for (const line of sections.flatMap((s) => s.summary)) console.log(line);
if (sections.some((s) => s.failed)) process.exitCode = 1;
