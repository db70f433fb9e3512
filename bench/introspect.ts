// The /introspect rows of `npm run bench` (bench/run.ts), each against a bare Fastify route answering a fixed JSON
// document to the same form POST (bench/bare.ts), in alternating rounds: (a) one hot token, with Prometheus metrics
// off and on (README: Metrics); (b) distinct live tokens, each first seen by the instance during the run; (c) unknown
// (random) tokens. Then a token revoked through instance A must read inactive on the very next call on A and on B.
import { randomToken } from '../src/lib/crypto.ts';
import {
  DURATION,
  load,
  median,
  medianOf,
  type Result,
  ROUNDS,
  row,
  type Section,
  type Started,
  TABLE_HEAD,
  WARMUP,
} from './common.ts';
import type { Seeded } from './seed.ts';

export interface IntrospectServers {
  /** A mints and revokes, B checks revocation; C (metrics on) and D (metrics off) take the load. */
  a: Started;
  b: Started;
  c: Started;
  d: Started;
  bare: Started;
  metricsToken: string;
}

const MIN_DISTINCT = Number(process.env.BENCH_DISTINCT_TOKENS ?? 10_000);

async function introspect(url: string, token: string, authorization: string): Promise<boolean> {
  const res = await fetch(`${url}/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
    body: new URLSearchParams({ token }),
  });
  return ((await res.json()) as { active: boolean }).active;
}

export async function introspectRows(s: IntrospectServers, seeded: Seeded): Promise<Section> {
  const authorization = seeded.introspectAuthorization;
  const headers = { authorization };
  const [token] = await seeded.accessTokens(1);
  if (!token || !(await introspect(s.a.url, token, authorization)))
    throw new Error('seeded token is not active');
  const hotBody = new URLSearchParams({ token, token_type_hint: 'access_token' }).toString();

  // (b): a pool of tokens none of the instances has seen; each request takes the next one. The pool is topped up
  // before each round to cover what the last round sent, so (nearly) every request is a first sighting.
  const pool: string[] = await seeded.accessTokens(MIN_DISTINCT);
  let next = 0;
  let repeats = 0;
  const distinctBody = () => {
    if (next >= pool.length) repeats++;
    const t = pool[next++ % pool.length]!;
    return `token=${t}&token_type_hint=access_token`;
  };
  const topUp = async (want: number) => {
    if (pool.length - next < want) pool.push(...(await seeded.accessTokens(want - (pool.length - next))));
  };
  // (c): made-up tokens in the shape Latchkey mints: prefix, 43 random characters, a (random) 8-character tag.
  const madeUp = () => `${randomToken(32, 'lk_at_')}${randomToken(6)}`;
  const unknownBody = () => `token=${madeUp()}&token_type_hint=access_token`;

  const bare: Result[] = [];
  const off: Result[] = [];
  const on: Result[] = [];
  const distinct: Result[] = [];
  const unknown: Result[] = [];
  const target = (name: string, started: Started, body: string | (() => string)) => ({
    name,
    url: started.url,
    path: '/introspect',
    headers,
    body,
  });
  for (let round = 0; round < ROUNDS; round++) {
    const last = distinct.at(-1);
    await topUp(Math.ceil((last ? last.rps : 0) * WARMUP * 1.3));
    const runs: [Result[], () => Promise<Result>][] = [
      [bare, () => load(target('bare Fastify route (fixed JSON)', s.bare, hotBody))],
      [off, () => load(target('(a) Latchkey, one hot token, metrics off', s.d, hotBody))],
      [on, () => load(target('(a) Latchkey, one hot token, metrics on', s.c, hotBody))],
      [
        distinct,
        // After the warm-up, enough unseen tokens for the measured run at the warm-up's rate.
        () =>
          load(
            target('(b) Latchkey, distinct tokens, each first seen', s.b, distinctBody),
            DURATION,
            WARMUP,
            (rps) => topUp(Math.ceil(rps * DURATION * 1.3)),
          ),
      ],
      [unknown, () => load(target('(c) Latchkey, unknown tokens', s.b, unknownBody))],
    ];
    // Every round starts with a different target, so none always follows the same one.
    for (let i = 0; i < runs.length; i++) {
      const [into, run] = runs[(i + round) % runs.length]!;
      into.push(await run());
    }
    console.log(
      `introspect round ${round + 1}: bare ${Math.round(bare[round]!.rps)}, (a) off ${Math.round(off[round]!.rps)}, (a) on ${Math.round(on[round]!.rps)}, (b) ${Math.round(distinct[round]!.rps)}, (c) ${Math.round(unknown[round]!.rps)} req/s`,
    );
  }
  const sent = next;

  // C counted every request it answered (warm-ups included), each under its route pattern.
  const scraped = await fetch(`${s.c.url}/metrics`, {
    headers: { authorization: `Bearer ${s.metricsToken}` },
  });
  const counted =
    /^latchkey_http_requests_total\{method="POST",route="\/introspect",status="200"\} (\d+)$/m.exec(
      await scraped.text(),
    );

  // Revocation on instance A must read inactive on the very next call, on A and on B.
  await introspect(s.b.url, token, authorization);
  await fetch(`${s.a.url}/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, client_id: seeded.clientId }),
  });
  const afterA = await introspect(s.a.url, token, authorization);
  const afterB = await introspect(s.b.url, token, authorization);

  const m = {
    bare: median(bare),
    off: median(off),
    on: median(on),
    distinct: median(distinct),
    unknown: median(unknown),
  };
  // Ratios within each round (the targets ran seconds apart), then their median: it shrugs off a disturbed round.
  const ratio = (xs: Result[]) => medianOf(xs.map((x, i) => x.rps / bare[i]!.rps));
  const onOff = medianOf(on.map((x, i) => x.rps / off[i]!.rps));
  const p99 = (r: Result) => `${r.p99} ms`;
  const summary = [
    `(a) one hot token / bare: ${ratio(off).toFixed(2)} (target ≥ 0.6); p99 ${p99(m.off)} (target ≤ 25 ms)`,
    `(b) distinct tokens / bare: ${ratio(distinct).toFixed(2)} (target ≥ 0.25); p99 ${p99(m.distinct)}; ${sent} requests over ${pool.length} tokens, ${repeats} of them repeats`,
    `(c) unknown tokens / bare: ${ratio(unknown).toFixed(2)} (target ≥ 0.4); p99 ${p99(m.unknown)}`,
    `metrics on / off: ${onOff.toFixed(3)} (median of the rounds' ratios; target ≥ 0.95); the instance with metrics on counted ${Number(counted?.[1] ?? 0)} /introspect requests`,
    `revoked token on the next call: instance A active=${afterA}, instance B active=${afterB} (target: both false)`,
  ];
  const rounds = bare
    .map(
      (b, i) =>
        `| ${i + 1} | ${Math.round(b.rps)} | ${Math.round(off[i]!.rps)} | ${Math.round(on[i]!.rps)} | ${Math.round(distinct[i]!.rps)} | ${Math.round(unknown[i]!.rps)} |`,
    )
    .join('\n');
  const markdown = `## /introspect

Every target receives the same form POST (\`token=…&token_type_hint=access_token\` with HTTP Basic resource-server
credentials). Four Latchkey instances share the database: C and D take the load and differ only in that C has
\`METRICS_TOKEN\` set (metrics on: every request counted and timed); (b) and (c) go to B, so the caches they fill
never sit in the instances that compare metrics on and off. For (b), each request
carries the next token of a pool minted beforehand through the store (topped up after each warm-up to cover the
measured run at the warm-up's rate), so the instance looks each one up for the first time. (c) sends a new made-up token with every request, in the shape Latchkey mints (\`lk_at_\`, 43 random characters and
an 8-character tag, here random too: docs/security.md, Token format). Afterwards a token is revoked
through A and introspected once on A and once on B. The table shows each target's median round; ratios are the
median of the rounds' ratios.

${TABLE_HEAD}
${[m.bare, m.off, m.on, m.distinct, m.unknown].map(row).join('\n')}

- ${summary.join('\n- ')}

Every round (req/s):

| round | bare | (a) off | (a) on | (b) distinct | (c) unknown |
| ---: | ---: | ---: | ---: | ---: | ---: |
${rounds}
`;
  return { markdown, summary, failed: afterA || afterB };
}
