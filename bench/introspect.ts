// The /introspect rows of `npm run bench` (bench/run.ts), each against a bare Fastify route answering a fixed JSON
// document to the same form POST (bench/bare.ts), in alternating rounds: (a) one hot token; (b) distinct live
// tokens, each first seen by the instance answering it; (c) unknown (random) tokens. Then Prometheus metrics on
// against off (README: Metrics) in rounds of their own, each on a fresh pair of instances; then a token revoked
// through instance A must read inactive on the very next call on A and on B.
import { randomToken } from '../src/lib/crypto.ts';
import {
  CONNECTIONS,
  DURATION,
  type LoadTarget,
  load,
  median,
  medianOf,
  type Result,
  ROUNDS,
  row,
  type Section,
  type Started,
  startLatchkey,
  stopAll,
  TABLE_HEAD,
  WARMUP,
} from './common.ts';
import type { Seeded } from './seed.ts';

export interface IntrospectServers {
  /** A mints and revokes; B takes (c) and checks revocation; D (metrics off) takes (a). */
  a: Started;
  b: Started;
  d: Started;
  bare: Started;
  /** For the instances started here: a fresh one for every (b) round and a fresh pair for every metrics round. */
  databaseUrl: string;
}

const MIN_DISTINCT = Number(process.env.BENCH_DISTINCT_TOKENS ?? 10_000);
/** Rounds of metrics on against off; a multiple of 4 balances which instance starts first and which runs first. */
const METRICS_ROUNDS = Number(process.env.BENCH_METRICS_ROUNDS ?? 8);
if (!Number.isInteger(METRICS_ROUNDS) || METRICS_ROUNDS < 2 || METRICS_ROUNDS % 2 !== 0)
  throw new Error(`BENCH_METRICS_ROUNDS: ${METRICS_ROUNDS} is not an even number ≥ 2 (default 8)`);

async function introspect(url: string, token: string, authorization: string): Promise<boolean> {
  const res = await fetch(`${url}/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
    body: new URLSearchParams({ token }),
  });
  return ((await res.json()) as { active: boolean }).active;
}

/** What a metrics-on instance counted as answered 200 on /introspect (0 when it has no such series). */
async function countedIntrospections(url: string, metricsToken: string): Promise<number> {
  const scraped = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
  const m = /^latchkey_http_requests_total\{method="POST",route="\/introspect",status="200"\} (\d+)$/m.exec(
    await scraped.text(),
  );
  return Number(m?.[1] ?? 0);
}

const geometricMean = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);

/** Two-sided 95 % Student t quantiles for 1…15 degrees of freedom (then ~2). */
const T95 = [12.71, 4.3, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.2, 2.18, 2.16, 2.14, 2.13];

/** A 95 % interval of the geometric mean of ratios (t interval of their logarithms). */
function interval95(ratios: number[]): [number, number] {
  const logs = ratios.map(Math.log);
  const mean = logs.reduce((a, x) => a + x, 0) / logs.length;
  const sd = Math.sqrt(logs.reduce((a, x) => a + (x - mean) ** 2, 0) / (logs.length - 1));
  const half = (T95[logs.length - 2] ?? 2) * (sd / Math.sqrt(logs.length));
  return [Math.exp(mean - half), Math.exp(mean + half)];
}

/** One metrics round: what each instance of the pair answered, and what the metrics-on one counted. */
interface MetricsRound {
  onStartedFirst: boolean;
  onRanFirst: boolean;
  on: Result[];
  off: Result[];
  /** /introspect 200s the metrics-on instance answered (warm-up included) and counted. */
  answered: number;
  counted: number;
  /** How many more it may have counted: requests in flight when a run stopped, or given up by autocannon. */
  unseen: number;
  /** What the metrics-off instance answers on /metrics (it must not serve them). */
  offMetricsStatus: number;
}

/** Throughput over several runs (answered requests over their total time), and server CPU per request. */
function pooled(rs: Result[]): { rps: number; cpuUs: number } {
  const answered = rs.reduce((a, r) => a + r.answered, 0);
  return {
    rps: answered / rs.reduce((a, r) => a + r.seconds, 0),
    cpuUs: rs.reduce((a, r) => a + (r.serverCpuUs ?? 0) * r.answered, 0) / answered,
  };
}

/**
 * Metrics on against off on a fresh pair of instances: two processes differ by more than 5 % on their own (JIT,
 * placement), so every round starts a new pair and the settings take turns: which of the two starts first, and which
 * runs first. Within the round, after a warm-up of each, the measured time is split ABBA (first, second, second,
 * first), so a drift of the machine's load within the round weighs on both alike.
 */
async function metricsRound(
  round: number,
  databaseUrl: string,
  target: (name: string, s: Started) => LoadTarget,
): Promise<MetricsRound> {
  const metricsToken = randomToken(32);
  const onStartedFirst = round % 2 === 0;
  const onRanFirst = round % 4 === 0 || round % 4 === 3;
  const started: Started[] = [];
  try {
    const settings: Record<string, string>[] = [{ METRICS_TOKEN: metricsToken }, {}];
    if (!onStartedFirst) settings.reverse();
    for (const env of settings) started.push(await startLatchkey({ DATABASE_URL: databaseUrl, ...env }));
    if (!onStartedFirst) started.reverse();
    const [onServer, offServer] = started as [Started, Started];
    const on = target('metrics on', onServer);
    const off = target('metrics off', offServer);
    const [first, second] = onRanFirst ? [on, off] : [off, on];
    const results = new Map<LoadTarget, Result[]>([
      [on, []],
      [off, []],
    ]);
    let answered = 0;
    let unseen = 0;
    const record = (t: LoadTarget, r: Result) => {
      if (t !== on) return;
      answered += r.answered;
      unseen += CONNECTIONS + r.errors;
    };
    for (const t of [first, second]) record(t, await load(t, WARMUP, 0));
    const slice = Math.max(1, Math.round(DURATION / 2));
    for (const t of [first, second, second, first]) {
      const r = await load(t, slice, 0);
      results.get(t)!.push(r);
      record(t, r);
    }
    const offMetrics = await fetch(`${offServer.url}/metrics`, {
      headers: { authorization: `Bearer ${metricsToken}` },
    });
    await offMetrics.arrayBuffer();
    return {
      onStartedFirst,
      onRanFirst,
      on: results.get(on)!,
      off: results.get(off)!,
      answered,
      unseen,
      counted: await countedIntrospections(onServer.url, metricsToken),
      offMetricsStatus: offMetrics.status,
    };
  } finally {
    await stopAll(started.map((s) => s.child));
  }
}

export async function introspectRows(s: IntrospectServers, seeded: Seeded): Promise<Section> {
  const authorization = seeded.introspectAuthorization;
  const headers = { authorization };
  const [token] = await seeded.accessTokens(1);
  if (!token || !(await introspect(s.a.url, token, authorization)))
    throw new Error('seeded token is not active');
  const hotBody = new URLSearchParams({ token, token_type_hint: 'access_token' }).toString();
  const target = (name: string, started: Started, body: string | (() => string)): LoadTarget => ({
    name,
    url: started.url,
    path: '/introspect',
    headers,
    body,
    ...(started.child.pid ? { pid: started.child.pid } : {}),
  });

  // (b): every round runs on an instance of its own, started for it, and each request carries the next token of a
  // pool minted through the store that this instance has never seen (the pool serves every round: a new instance has
  // seen none of it). Before the run, and again after the warm-up, the pool is made at least twice what the run
  // may take at the fastest rate seen so far (earlier runs; the warm-up's fastest second: a fresh instance is slow
  // at first, so its average undershoots); minting, and the VACUUM after it (Seeded.settle), stay outside the
  // measured window. A measured run that still runs out of tokens is not kept: the pool grows and the run is done
  // again on the same, warm, instance.
  // Filled by the first run's ensure (at least MIN_DISTINCT), which vacuums after minting like every later top-up.
  const pool: string[] = [];
  let next = 0;
  let repeats = 0;
  const distinctBody = () => {
    let t = pool[next];
    if (t === undefined) {
      repeats++;
      t = pool[Math.floor(Math.random() * pool.length)]!;
    } else next++;
    return `token=${t}&token_type_hint=access_token`;
  };
  const ensure = async (want: number) => {
    const missing = Math.ceil(want) - (pool.length - next);
    // One push at a time: spreading a pool of 100k+ tokens into push() overflows the call stack.
    if (missing > 0) {
      for (const t of await seeded.accessTokens(missing)) pool.push(t);
      await seeded.settle();
    }
  };
  let fastest = 0;
  const distinctRun = { warmRepeats: 0, reruns: 0, measuredRepeats: 0, perRun: [] as number[], minted: 0 };
  const runDistinct = async (): Promise<Result> => {
    const instance = await startLatchkey({ DATABASE_URL: s.databaseUrl });
    try {
      next = 0;
      await ensure(Math.max(MIN_DISTINCT, fastest * (WARMUP + DURATION) * 2));
      repeats = 0;
      const t = target('(b) Latchkey, distinct tokens, each first seen', instance, distinctBody);
      let r = await load(t, DURATION, WARMUP, async (_warmRps, warmPeakRps) => {
        distinctRun.warmRepeats += repeats;
        fastest = Math.max(fastest, warmPeakRps);
        await ensure(fastest * DURATION * 2);
        repeats = 0;
      });
      for (let tries = 0; repeats > 0 && tries < 2; tries++) {
        console.log(`(b): the pool ran out (${repeats} repeats); minting more and measuring again`);
        distinctRun.reruns++;
        fastest = Math.max(fastest, r.rps * 1.5);
        await ensure(fastest * DURATION * 2);
        repeats = 0;
        r = await load(t, DURATION, 0);
      }
      distinctRun.measuredRepeats += repeats;
      distinctRun.perRun.push(r.answered);
      fastest = Math.max(fastest, r.rps);
      return r;
    } finally {
      await stopAll([instance.child]);
    }
  };
  // (c): made-up tokens in the shape Latchkey mints: prefix, 43 random characters, a (random) 8-character tag.
  const madeUp = () => `${randomToken(32, 'lk_at_')}${randomToken(6)}`;
  const unknownBody = () => `token=${madeUp()}&token_type_hint=access_token`;

  const bare: Result[] = [];
  const off: Result[] = [];
  const distinct: Result[] = [];
  const unknown: Result[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const runs: [Result[], () => Promise<Result>][] = [
      [bare, () => load(target('bare Fastify route (fixed JSON)', s.bare, hotBody))],
      [off, () => load(target('(a) Latchkey, one hot token', s.d, hotBody))],
      [distinct, runDistinct],
      [unknown, () => load(target('(c) Latchkey, unknown tokens', s.b, unknownBody))],
    ];
    // Every round starts with a different target, so none always follows the same one.
    for (let i = 0; i < runs.length; i++) {
      const [into, run] = runs[(i + round) % runs.length]!;
      into.push(await run());
    }
    console.log(
      `introspect round ${round + 1}: bare ${Math.round(bare[round]!.rps)}, (a) ${Math.round(off[round]!.rps)}, (b) ${Math.round(distinct[round]!.rps)}, (c) ${Math.round(unknown[round]!.rps)} req/s`,
    );
  }

  const metrics: MetricsRound[] = [];
  for (let round = 0; round < METRICS_ROUNDS; round++) {
    metrics.push(await metricsRound(round, s.databaseUrl, (name, started) => target(name, started, hotBody)));
    const m = metrics[round]!;
    console.log(
      `metrics round ${round + 1}: on ${Math.round(pooled(m.on).rps)}, off ${Math.round(pooled(m.off).rps)} req/s`,
    );
  }

  // Revocation on instance A must read inactive on the very next call, on A and on B.
  await introspect(s.b.url, token, authorization);
  await fetch(`${s.a.url}/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, client_id: seeded.clientId }),
  });
  const afterA = await introspect(s.a.url, token, authorization);
  const afterB = await introspect(s.b.url, token, authorization);

  const m = { bare: median(bare), off: median(off), distinct: median(distinct), unknown: median(unknown) };
  // Ratios within each round (the targets ran seconds apart), then their median: it shrugs off a disturbed round.
  const ratio = (xs: Result[]) => medianOf(xs.map((x, i) => x.rps / bare[i]!.rps));
  const p99 = (r: Result) => `${r.p99} ms`;

  const onOff = metrics.map((r) => pooled(r.on).rps / pooled(r.off).rps);
  const cpuOnOff = metrics.map((r) => pooled(r.on).cpuUs / pooled(r.off).cpuUs);
  const [lo, hi] = interval95(onOff);
  const miscounted = metrics.filter(
    (r) => r.counted < r.answered || r.counted > r.answered + r.unseen || r.offMetricsStatus === 200,
  );
  const answered = metrics.reduce((a, r) => a + r.answered, 0);
  const counted = metrics.reduce((a, r) => a + r.counted, 0);

  const loadCpu = (r: Result) =>
    `${r.loadCores.toFixed(2)} cores (${Math.round((r.loadCores * r.seconds * 1e6) / Math.max(1, r.answered))} µs a request)`;
  const serverCpu = (r: Result) => `${Math.round(r.serverCpuUs ?? 0)} µs`;
  const summary = [
    `(a) one hot token / bare: ${ratio(off).toFixed(2)} (target ≥ 0.6); p99 ${p99(m.off)} (target ≤ 25 ms)`,
    `(b) distinct tokens / bare: ${ratio(distinct).toFixed(2)} (target ≥ 0.25); p99 ${p99(m.distinct)}; measured runs of ${distinctRun.perRun.join(', ')} requests, each token new to the instance: ${distinctRun.measuredRepeats} repeats (target 0; in the warm-ups, which are not measured: ${distinctRun.warmRepeats})${distinctRun.reruns ? `, after ${distinctRun.reruns} run(s) done again for want of tokens` : ''}; ${pool.length} tokens minted`,
    `(c) unknown tokens / bare: ${ratio(unknown).toFixed(2)} (target ≥ 0.4); p99 ${p99(m.unknown)}`,
    `metrics on / off: ${geometricMean(onOff).toFixed(3)} (geometric mean of ${metrics.length} rounds, each a fresh pair; rounds ${Math.min(...onOff).toFixed(3)}–${Math.max(...onOff).toFixed(3)}, 95 % interval ${lo.toFixed(3)}–${hi.toFixed(3)}; target ≥ 0.95); server CPU a request on / off ${geometricMean(cpuOnOff).toFixed(3)}; the metrics-on instances counted ${counted} /introspect 200s of the ${answered} they answered${miscounted.length ? ` — ${miscounted.length} round(s) did not count right or served /metrics with metrics off` : ''}`,
    `revoked token on the next call: instance A active=${afterA}, instance B active=${afterB} (target: both false)`,
  ];
  const rounds = bare
    .map(
      (b, i) =>
        `| ${i + 1} | ${Math.round(b.rps)} | ${Math.round(off[i]!.rps)} | ${Math.round(distinct[i]!.rps)} | ${Math.round(unknown[i]!.rps)} |`,
    )
    .join('\n');
  const metricsRows = metrics
    .map((r, i) => {
      const [on, offR] = [pooled(r.on), pooled(r.off)];
      return `| ${i + 1} | ${r.onStartedFirst ? 'on' : 'off'} | ${r.onRanFirst ? 'on' : 'off'} | ${Math.round(on.rps)} | ${Math.round(offR.rps)} | ${onOff[i]!.toFixed(3)} | ${Math.round(on.cpuUs)} | ${Math.round(offR.cpuUs)} | ${r.counted} / ${r.answered} |`;
    })
    .join('\n');
  const markdown = `## /introspect

Every target receives the same form POST (\`token=…&token_type_hint=access_token\` with HTTP Basic resource-server
credentials). Latchkey instances share the database; none has \`METRICS_TOKEN\` set except the metrics-on ones
below. (a) goes to instance D. (b) runs on an instance started for the round, so each round's instance has seen none
of the pool of tokens minted beforehand through the store: each request carries the next token of the pool, and the
pool is made at least twice what the run may take at the fastest rate seen so far (earlier runs, the warm-up's fastest
second), before the run and again after its warm-up (minting is outside the measured window; a measured run that still
ran out would be done again with more).
(c) goes to instance B and sends a new made-up token with every request, in the shape Latchkey mints (\`lk_at_\`, 43
random characters and an 8-character tag, here random too: docs/security.md, Token format). Afterwards a token is revoked through A and
introspected once on A and once on B. The table shows each target's median round; ratios are the median of the
rounds' ratios.

${TABLE_HEAD}
${[m.bare, m.off, m.distinct, m.unknown].map(row).join('\n')}

- ${summary.join('\n- ')}
- CPU of the bench process (autocannon; for (b) and (c) a callback makes each request's body) in the median
  round: bare ${loadCpu(m.bare)}, (a) ${loadCpu(m.off)}, (b) ${loadCpu(m.distinct)}, (c) ${loadCpu(m.unknown)};
  Latchkey's own CPU a request: (a) ${serverCpu(m.off)}, (b) ${serverCpu(m.distinct)}, (c) ${serverCpu(m.unknown)}

Every round (req/s):

| round | bare | (a) one hot token | (b) distinct | (c) unknown |
| ---: | ---: | ---: | ---: | ---: |
${rounds}

### Metrics on against off

One hot token, as (a). Two processes alike differ by more than 5 % on their own (JIT, placement on the cores), so
each of ${metrics.length} rounds starts a fresh pair of instances, one with \`METRICS_TOKEN\` (metrics on: every request
counted and timed) and one without, and the two settings take turns at starting first and at running first. After a
${WARMUP} s warm-up of each, the ${DURATION} s each gets is split in ${Math.max(1, Math.round(DURATION / 2))} s slices in the order first, second,
second, first, so a drift of the machine's load within the round weighs on both. A round's ratio is the metrics-on
instance's throughput over the metrics-off one's (requests answered over time, the two slices together); the
figure is the geometric mean of the rounds' ratios, with a 95 % interval from their spread. CPU is each Latchkey
process's own (user + system, from /proc) over the measured slices, per request. The metrics-on instance's
\`/metrics\` is scraped at the end of its round: it must have counted every /introspect it answered (warm-up
included; at most one in-flight request a connection more); the metrics-off one must not serve \`/metrics\`.

| round | started first | ran first | on req/s | off req/s | on / off | on µs CPU a request | off µs CPU a request | counted / answered (on) |
| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |
${metricsRows}
`;
  return { markdown, summary, failed: afterA || afterB || miscounted.length > 0 };
}
