// npm run bench: /introspect throughput and latency against Postgres, side by side in the same run with a bare
// Fastify route answering a fixed JSON document to the same form POST (bench/bare.ts), and with Prometheus metrics
// off and on (README: Metrics). Every server runs as its own process (Latchkey exactly as `npm start` runs it);
// autocannon drives them from this process over loopback. Writes the result table to docs/benchmarks.md.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { openPostgres } from '../src/db/database.ts';
import { hashSecret, randomToken } from '../src/lib/crypto.ts';
import { PACKAGE_ROOT } from '../src/paths.ts';
import { createStores } from '../src/store/index.ts';
import { FormBrowser } from '../test/helpers/browser.ts';
import { createPostgresDatabase } from '../test/helpers/db.ts';
import { CHALLENGE, VERIFIER } from '../test/helpers/flow.ts';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const DURATION = Number(process.env.BENCH_DURATION ?? 8);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** The round with the median throughput. */
function median(results: Result[]): Result {
  const sorted = [...results].sort((x, y) => x.rps - y.rps);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}: ${buf.slice(-500)}`)),
      60_000,
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

async function startLatchkey(
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<{ url: string; child: ChildProcess }> {
  // BENCH_CPU_PROFILE=DIR writes a V8 CPU profile of each Latchkey instance there (for finding hot spots).
  const profile = process.env.BENCH_CPU_PROFILE
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE}`]
    : [];
  const child = spawn(process.execPath, [...profile, join(PACKAGE_ROOT, 'dist/main.js')], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: '0',
      LOG_LEVEL: 'info',
      ISSUER: 'http://127.0.0.1:1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const m = await waitForLine(child, /Server listening at (http:\/\/127\.0\.0\.1:\d+)/);
  return { url: m[1]!, child };
}

async function startBare(): Promise<{ url: string; child: ChildProcess }> {
  const profile = process.env.BENCH_CPU_PROFILE
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE}/bare`]
    : [];
  const child = spawn(
    process.execPath,
    [...profile, '--import', 'tsx', join(PACKAGE_ROOT, 'bench/bare.ts')],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const m = await waitForLine(child, /^(\d+)$/m);
  return { url: `http://127.0.0.1:${m[1]}`, child };
}

interface Result {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

async function load(name: string, url: string, body: string, authorization: string): Promise<Result> {
  const opts = {
    url: `${url}/introspect`,
    method: 'POST' as const,
    connections: CONNECTIONS,
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
    body,
  };
  await autocannon({ ...opts, duration: WARMUP });
  const r = await autocannon({ ...opts, duration: DURATION });
  return {
    name,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors,
    non2xx: r.non2xx,
  };
}

async function introspect(url: string, token: string, authorization: string): Promise<boolean> {
  const res = await fetch(`${url}/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
    body: new URLSearchParams({ token }),
  });
  return ((await res.json()) as { active: boolean }).active;
}

async function main() {
  const pg = await createPostgresDatabase();
  const children: ChildProcess[] = [];
  try {
    const a = await startLatchkey(pg.url);
    children.push(a.child);
    const b = await startLatchkey(pg.url);
    children.push(b.child);
    const bare = await startBare();
    children.push(bare.child);
    // Two more instances, alike but for metrics, and neither used for anything but the load, so that nothing else
    // tells them apart: D as configured by default (metrics off), C with metrics on (/metrics behind a token, so
    // every request is counted and timed).
    const metricsToken = randomToken(32);
    const c = await startLatchkey(pg.url, { METRICS_TOKEN: metricsToken });
    children.push(c.child);
    const d = await startLatchkey(pg.url);
    children.push(d.child);

    // Seed: a resource server, a client, a user, and a real token minted through the real flow on instance A.
    const db = openPostgres({ url: pg.url, poolSize: 2 });
    const stores = createStores(db.prisma);
    const rsId = `rs_${randomToken(8)}`;
    const rsSecret = randomToken(32);
    await stores.resourceServers.create({
      uri: 'https://mcp.example.com/mcp',
      name: 'bench',
      clientId: rsId,
      secretHash: hashSecret(rsSecret),
    });
    const clientId = randomToken(16);
    await stores.clients.create({
      clientId,
      kind: 'OPERATOR',
      name: 'bench',
      redirectUris: ['http://127.0.0.1:9/cb'],
      grantTypes: ['authorization_code', 'refresh_token'],
      responseTypes: ['code'],
      tokenEndpointAuthMethod: 'none',
    });
    await stores.users.create({ email: 'bench@example.com', password: 'bench password 123' });
    await db.close();

    const browser = new FormBrowser(a.url);
    const q = new URLSearchParams({
      client_id: clientId,
      redirect_uri: 'http://127.0.0.1:9/cb',
      response_type: 'code',
      code_challenge: CHALLENGE,
      code_challenge_method: 'S256',
      state: 's',
    });
    const cb = await browser.authorize(`${a.url}/authorize?${q}`, {
      email: 'bench@example.com',
      password: 'bench password 123',
    });
    const tokenRes = await fetch(`${a.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: cb.searchParams.get('code')!,
        code_verifier: VERIFIER,
        client_id: clientId,
        redirect_uri: 'http://127.0.0.1:9/cb',
      }),
    });
    const { access_token: token } = (await tokenRes.json()) as { access_token: string };
    const authorization = `Basic ${Buffer.from(`${rsId}:${rsSecret}`).toString('base64')}`;
    if (!(await introspect(a.url, token, authorization))) throw new Error('seeded token is not active');

    const body = new URLSearchParams({ token, token_type_hint: 'access_token' }).toString();
    // Alternate rounds so that drift in what else the machine is doing falls on both targets alike; report the
    // median round of each.
    // Metrics off (A) and on (C) take turns going first, so neither always follows the bare route.
    const bareRounds: Result[] = [];
    const lkRounds: Result[] = [];
    const onRounds: Result[] = [];
    const off = () => load('Latchkey /introspect (Postgres), metrics off', d.url, body, authorization);
    const on = () => load('Latchkey /introspect (Postgres), metrics on', c.url, body, authorization);
    for (let round = 0; round < ROUNDS; round++) {
      bareRounds.push(await load('bare Fastify route (fixed JSON)', bare.url, body, authorization));
      if (round % 2 === 0) {
        lkRounds.push(await off());
        onRounds.push(await on());
      } else {
        onRounds.push(await on());
        lkRounds.push(await off());
      }
      console.log(
        `round ${round + 1}: bare ${Math.round(bareRounds[round]!.rps)} req/s, Latchkey ${Math.round(lkRounds[round]!.rps)} req/s, with metrics ${Math.round(onRounds[round]!.rps)} req/s`,
      );
    }
    const bareResult = median(bareRounds);
    const lkResult = median(lkRounds);
    const onResult = median(onRounds);
    // C counted every request it answered (warm-ups included), each under its route pattern.
    const scraped = await fetch(`${c.url}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
    const counted =
      /^latchkey_http_requests_total\{method="POST",route="\/introspect",status="200"\} (\d+)$/m.exec(
        await scraped.text(),
      );
    const countedOnC = Number(counted?.[1] ?? 0);

    // Revocation on instance A must read inactive on the very next call, on A and on B.
    await introspect(b.url, token, authorization);
    await fetch(`${a.url}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, client_id: clientId }),
    });
    const afterA = await introspect(a.url, token, authorization);
    const afterB = await introspect(b.url, token, authorization);

    const ratio = lkResult.rps / bareResult.rps;
    const metricsRatio = onResult.rps / lkResult.rps;
    // Within a round the two ran seconds apart; the median of those ratios shrugs off a round disturbed by the machine.
    const roundRatios = onRounds.map((r, i) => r.rps / lkRounds[i]!.rps).sort((x, y) => x - y);
    const medianRoundRatio = roundRatios[Math.floor(roundRatios.length / 2)]!;
    const row = (r: Result) =>
      `| ${r.name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${r.errors + r.non2xx} |`;
    const rounds = bareRounds
      .map(
        (r, i) =>
          `| ${i + 1} | ${Math.round(r.rps)} | ${Math.round(lkRounds[i]!.rps)} | ${(lkRounds[i]!.rps / r.rps).toFixed(2)} | ${Math.round(onRounds[i]!.rps)} | ${(onRounds[i]!.rps / lkRounds[i]!.rps).toFixed(3)} |`,
      )
      .join('\n');
    const table = [
      '| target | req/s | p50 ms | p99 ms | errors |',
      '| --- | ---: | ---: | ---: | ---: |',
      row(bareResult),
      row(lkResult),
      row(onResult),
    ].join('\n');
    const summary = [
      `ratio (Latchkey / bare): ${ratio.toFixed(2)} (target ≥ 0.50)`,
      `Latchkey p99: ${lkResult.p99} ms (target ≤ 10 ms)`,
      `ratio (metrics on / metrics off): ${metricsRatio.toFixed(3)} between the median rounds, ${medianRoundRatio.toFixed(3)} as the median of the rounds' ratios (target ≥ 0.95); the instance with metrics on counted ${countedOnC} /introspect requests`,
      `revoked token on the next call: instance A active=${afterA}, instance B active=${afterB} (target: both false)`,
    ];
    console.log(table);
    for (const line of summary) console.log(line);

    const doc = `# Benchmarks

Produced by \`npm run bench\` (bench/introspect.ts) on ${new Date().toISOString().slice(0, 10)}:
${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version},
PostgreSQL on 127.0.0.1. autocannon, ${CONNECTIONS} connections, from the bench process; each server is its own process
on the same machine. ${ROUNDS} rounds alternate between the targets (each round: ${WARMUP} s warm-up, ${DURATION} s
measured; metrics off and on take turns going first); the table shows each target's median round. Every target
receives the same form POST (\`token=…&token_type_hint=access_token\` with HTTP Basic resource-server credentials).
Four Latchkey instances share the database. The load goes to C and D, which differ only in that C has
\`METRICS_TOKEN\` set (metrics on: every request counted and timed) and D does not (metrics off, the default). A
mints the token through the real flow; afterwards the token is revoked through A and then introspected once on A and
once on B.

${table}

- ${summary.join('\n- ')}

Every round (req/s):

| round | bare | Latchkey | ratio | metrics on | on / off |
| ---: | ---: | ---: | ---: | ---: | ---: |
${rounds}

The numbers are from a shared 2-core machine and move by ±15% between runs; the ratio, measured in one run, is the
figure to compare. Metrics on and off are likewise compared within each round.
`;
    await writeFile(join(PACKAGE_ROOT, 'docs/benchmarks.md'), doc);
    if (afterA || afterB) process.exitCode = 1;
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await pg.drop();
  }
}

await main();
