// A quick /token bench (issue 12): code exchange and refresh rotation throughput of this build against another
// build of Latchkey (e.g. the commit before a change), in alternating rounds in the same run, on one Postgres.
//   BENCH_BEFORE_DIST=/path/to/other/dist npx tsx bench/token-paths.ts
// Without BENCH_BEFORE_DIST it measures this build alone. Every request presents a code or refresh token of its
// own, seeded in bulk beforehand (grants, codes and refresh tokens as the store writes them; only hashes stored).
// BENCH_PROBE=1 adds, for every run, the server's view of it (bench/probe.mjs: the time from request to response,
// event-loop delay, GC pauses), to tell the latency spent inside the server from the rest.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { hashSecret, randomToken } from '../src/lib/crypto.ts';
import { PACKAGE_ROOT } from '../src/paths.ts';
import { createPostgresDatabase } from '../test/helpers/db.ts';
import { CHALLENGE, VERIFIER } from '../test/helpers/flow.ts';
import { cpuSeconds, postgresCpu, postgresCpuSince, waitForLine } from './common.ts';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/**
 * Codes and refresh tokens seeded per target, grant and round: more than a round can spend (a 2-core AMD EPYC ran
 * ~4,000 a second, 20,000 in a 5-s round; a 2-core Intel Xeon ran ~6,300 a second, and 30,000 ran out there).
 */
const PER_ROUND = Number(process.env.BENCH_PER_ROUND ?? 60_000);
const REDIRECT = 'http://127.0.0.1:9/cb';
const PROBE = process.env.BENCH_PROBE === '1';

interface Server {
  url: string;
  child: ChildProcess;
  /** The probe's next line (bench/probe.mjs), once asked for with SIGUSR2. */
  probe(): Promise<string>;
}

async function start(dist: string, databaseUrl: string): Promise<Server> {
  // BENCH_CPU_PROFILE=DIR writes a V8 CPU profile of each server there (for finding hot spots).
  const profile = process.env.BENCH_CPU_PROFILE
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE}`]
    : [];
  const probe = PROBE ? ['--import', pathToFileURL(join(PACKAGE_ROOT, 'bench/probe.mjs')).href] : [];
  const child = spawn(process.execPath, [...profile, ...probe, join(dist, 'main.js')], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: '0',
      LOG_LEVEL: 'info',
      ISSUER: 'http://127.0.0.1:1',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const { 1: url } = await waitForLine(child, /Server listening at (http:\/\/127\.0\.0\.1:\d+)/);
  // The probe's lines, each to the call that asked for it (the server answers in order); a server that exits fails
  // every call still waiting, rather than leaving the bench waiting for ever.
  const waiting: { resolve(line: string): void; reject(err: Error): void }[] = [];
  let rest = '';
  child.stdout?.on('data', (d: Buffer) => {
    const lines = (rest + d.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('probe: ')) waiting.shift()?.resolve(line.slice(7));
  });
  child.once('exit', (code) => {
    for (const w of waiting.splice(0))
      w.reject(new Error(`server exited with ${code} before the probe answered`));
  });
  return {
    url: url!,
    child,
    probe: () =>
      new Promise((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null)
          return reject(new Error('server exited before the probe was asked'));
        waiting.push({ resolve, reject });
        child.kill('SIGUSR2');
      }),
  };
}

interface Seed {
  clientId: string;
  clientUuid: string;
  userId: string;
  resourceServerId: string;
}

async function seedBase(c: pg.Client): Promise<Seed> {
  const clientUuid = randomUUID();
  const clientId = randomToken(16);
  const userId = randomUUID();
  const resourceServerId = randomUUID();
  await c.query(
    `INSERT INTO clients (id, client_id, kind, name, redirect_uris, grant_types, response_types, updated_at)
     VALUES ($1, $2, 'OPERATOR', 'bench', $3, '{authorization_code,refresh_token}', '{code}', now())`,
    [clientUuid, clientId, [REDIRECT]],
  );
  await c.query(`INSERT INTO users (id, email, updated_at) VALUES ($1, 'bench@example.com', now())`, [
    userId,
  ]);
  await c.query(
    `INSERT INTO resource_servers (id, uri, name, client_id, secret_hash, updated_at)
     VALUES ($1, 'https://mcp.example.com/mcp', 'bench', 'rs_bench', $2, now())`,
    [resourceServerId, hashSecret(randomToken())],
  );
  return { clientId, clientUuid, userId, resourceServerId };
}

/** n grants, each with an unspent code (kind 'code') or a live refresh token (kind 'refresh'); returns them. */
async function seed(c: pg.Client, s: Seed, kind: 'code' | 'refresh', n: number): Promise<string[]> {
  const grants = Array.from({ length: n }, () => randomUUID());
  const ids = Array.from({ length: n }, () => randomUUID());
  const secrets = Array.from({ length: n }, () => randomToken(32, kind === 'code' ? 'lk_code_' : 'lk_rt_'));
  const hashes = secrets.map(hashSecret);
  await c.query(
    `INSERT INTO grants (id, user_id, client_id, resource_server_id, scopes, redirect_uri)
     SELECT g, $2, $3, $4, '{}', $5 FROM unnest($1::uuid[]) g`,
    [grants, s.userId, s.clientUuid, s.resourceServerId, REDIRECT],
  );
  if (kind === 'code') {
    await c.query(
      `INSERT INTO authorization_codes (id, code_hash, grant_id, user_id, client_id, resource_server_id,
         redirect_uri, code_challenge, scopes, expires_at)
       SELECT i, h, g, $4, $5, $6, $7, $8, '{}', now() + interval '1 hour'
       FROM unnest($1::uuid[], $2::text[], $3::uuid[]) AS t(i, h, g)`,
      [ids, hashes, grants, s.userId, s.clientUuid, s.resourceServerId, REDIRECT, CHALLENGE],
    );
  } else {
    await c.query(
      `INSERT INTO refresh_tokens (id, token_hash, grant_id, scopes, expires_at)
       SELECT i, h, g, '{}', now() + interval '1 day' FROM unnest($1::uuid[], $2::text[], $3::uuid[]) AS t(i, h, g)`,
      [ids, hashes, grants],
    );
  }
  return secrets;
}

interface Result {
  rps: number;
  p50: number;
  p99: number;
  failed: number;
  /** CPU a request, µs: the server's process, and every PostgreSQL process. */
  serverUs: number;
  databaseUs: number;
  /** With BENCH_PROBE=1: the server's view of the run (bench/probe.mjs). */
  probe?: string;
}

async function load(target: Server, bodies: string[]): Promise<Result> {
  const { url } = target;
  const pid = target.child.pid ?? 0;
  let next = 0;
  if (PROBE) await target.probe(); // starts the probe's figures over
  const server0 = cpuSeconds(pid);
  const database0 = postgresCpu();
  const r = await autocannon({
    url: `${url}/token`,
    method: 'POST',
    connections: CONNECTIONS,
    duration: DURATION,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    requests: [
      {
        // Once the seeded values run out, the last is sent again (and refused); the run then throws below, after
        // autocannon has returned, so main's cleanup still stops the servers (a throw here would end the process).
        setupRequest: (req) => ({ ...req, body: bodies[Math.min(next++, bodies.length - 1)] }),
      },
    ],
  });
  if (next > bodies.length)
    throw new Error('bench ran out of seeded codes or refresh tokens; raise BENCH_PER_ROUND');
  const server = cpuSeconds(pid) - server0;
  const database = postgresCpuSince(database0);
  const answered = Math.max(1, r['2xx']);
  const probe = PROBE ? await target.probe() : undefined;
  return {
    ...(probe ? { probe } : {}),
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    failed: r.errors + r.non2xx,
    serverUs: (server * 1e6) / answered,
    databaseUs: (database * 1e6) / answered,
  };
}

const describe = (r: Result) =>
  `${Math.round(r.rps)} req/s (p99 ${r.p99} ms, failed ${r.failed}, CPU µs a request: server ${Math.round(r.serverUs)}, PostgreSQL ${Math.round(r.databaseUs)})`;

async function main() {
  const db = await createPostgresDatabase();
  const targets: { name: string; dist: string }[] = [
    { name: 'this build', dist: join(PACKAGE_ROOT, 'dist') },
  ];
  if (process.env.BENCH_BEFORE_DIST) targets.unshift({ name: 'before', dist: process.env.BENCH_BEFORE_DIST });
  const children: ChildProcess[] = [];
  const c = new pg.Client({ connectionString: db.url });
  try {
    const servers = [];
    for (const t of targets) {
      const s = await start(t.dist, db.url); // the first one migrates the database
      children.push(s.child);
      servers.push({ ...t, server: s });
    }
    await c.connect();
    const base = await seedBase(c);
    const results = new Map<string, Result[]>();
    const record = (key: string, r: Result) => results.set(key, [...(results.get(key) ?? []), r]);
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which target goes first, so drift in the machine's load falls on both alike.
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const s of order) {
        const codes = await seed(c, base, 'code', PER_ROUND);
        const codeBodies = codes.map((code) =>
          new URLSearchParams({
            grant_type: 'authorization_code',
            code,
            code_verifier: VERIFIER,
            client_id: base.clientId,
            redirect_uri: REDIRECT,
          }).toString(),
        );
        const refreshes = await seed(c, base, 'refresh', PER_ROUND);
        const refreshBodies = refreshes.map((rt) =>
          new URLSearchParams({
            grant_type: 'refresh_token',
            refresh_token: rt,
            client_id: base.clientId,
          }).toString(),
        );
        const ex = await load(s.server, codeBodies);
        const rf = await load(s.server, refreshBodies);
        record(`${s.name} code exchange`, ex);
        record(`${s.name} refresh rotation`, rf);
        console.log(`round ${round + 1} ${s.name}: exchange ${describe(ex)}; refresh ${describe(rf)}`);
        if (ex.probe)
          console.log(
            `  exchange, inside the server: ${ex.probe}\n  refresh, inside the server: ${rf.probe}`,
          );
      }
    }
    console.log(
      '| target | median req/s | p50 ms | p99 ms | failed | server CPU µs a request | PostgreSQL CPU µs a request |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const [name, rs] of results) {
      const m = [...rs].sort((x, y) => x.rps - y.rps)[Math.floor(rs.length / 2)] as Result;
      console.log(
        `| ${name} | ${Math.round(m.rps)} | ${m.p50} | ${m.p99} | ${m.failed} | ${Math.round(m.serverUs)} | ${Math.round(m.databaseUs)} |`,
      );
    }
  } finally {
    await c.end().catch(() => {});
    for (const ch of children) ch.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await db.drop();
  }
}

await main();
