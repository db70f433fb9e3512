// The /token rows of `npm run bench` (bench/run.ts): code exchange (authorization_code with PKCE, public client) and
// refresh rotation, Latchkey against node-oidc-provider doing the same grants with its in-memory adapter
// (bench/peer.ts), in alternating rounds. Every request spends a code or refresh token minted beforehand: Latchkey's
// through its store code (bench/seed.ts), the peer's through its own models. Pools are topped up before each round
// to cover what the last round sent; a request past the end of a pool would repeat a spent one and fail (counted in
// the errors column), never silently. A top-up of Latchkey's pools ends with Seeded.settle (a VACUUM of what minting
// filled), so the measured run does not pay for the seeding.
import { once } from 'node:events';
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
import { PEER_CLIENT_ID, PEER_REDIRECT_URI, PEER_VERIFIER } from './peer-constants.ts';
import { REDIRECT_URI, type Seeded, VERIFIER } from './seed.ts';

// Enough for a first warm-up at 1,500 requests a second.
const MIN_POOL = Number(process.env.BENCH_TOKEN_POOL ?? 3000);

type Kind = 'code' | 'refresh';

async function mintPeer(peer: Started, kind: Kind, n: number): Promise<string[]> {
  const got = once(peer.child, 'message') as Promise<[{ minted: string[] }]>;
  peer.child.send?.({ mint: kind, n });
  return (await got)[0].minted;
}

/** A pool of single-use values; `take` hands out the next (repeating the last once empty, which then fails). */
class Pool {
  private values: string[] = [];
  private next = 0;
  constructor(
    private readonly mint: (n: number) => Promise<string[]>,
    /** Run after minting, before the load (Seeded.settle): the peer's pools live in its memory and need none. */
    private readonly settle?: () => Promise<void>,
  ) {}
  async topUp(want: number): Promise<void> {
    const left = this.values.length - this.next;
    if (left >= want) return;
    // One push at a time: spreading a pool of 100k+ values into push() overflows the call stack.
    for (const v of await this.mint(want - left)) this.values.push(v);
    await this.settle?.();
  }
  take = (): string => this.values[Math.min(this.next++, this.values.length - 1)]!;
}

export async function tokenRows(latchkey: Started, peer: Started, seeded: Seeded): Promise<Section> {
  const pools = {
    lkCode: new Pool((n) => seeded.codes(n), seeded.settle),
    lkRefresh: new Pool((n) => seeded.refreshTokens(n), seeded.settle),
    peerCode: new Pool((n) => mintPeer(peer, 'code', n)),
    peerRefresh: new Pool((n) => mintPeer(peer, 'refresh', n)),
  };
  const lkClient = seeded.clientId;
  const form = (p: Record<string, string>) => new URLSearchParams(p).toString();
  const targets = {
    lkCode: () =>
      form({
        grant_type: 'authorization_code',
        code: pools.lkCode.take(),
        code_verifier: VERIFIER,
        client_id: lkClient,
        redirect_uri: REDIRECT_URI,
      }),
    peerCode: () =>
      form({
        grant_type: 'authorization_code',
        code: pools.peerCode.take(),
        code_verifier: PEER_VERIFIER,
        client_id: PEER_CLIENT_ID,
        redirect_uri: PEER_REDIRECT_URI,
      }),
    lkRefresh: () =>
      form({ grant_type: 'refresh_token', refresh_token: pools.lkRefresh.take(), client_id: lkClient }),
    peerRefresh: () =>
      form({
        grant_type: 'refresh_token',
        refresh_token: pools.peerRefresh.take(),
        client_id: PEER_CLIENT_ID,
      }),
  };
  const names = {
    lkCode: 'Latchkey code exchange',
    peerCode: 'node-oidc-provider code exchange',
    lkRefresh: 'Latchkey refresh rotation',
    peerRefresh: 'node-oidc-provider refresh rotation',
  };
  const results: Record<keyof typeof targets, Result[]> = {
    lkCode: [],
    peerCode: [],
    lkRefresh: [],
    peerRefresh: [],
  };
  const order = Object.keys(targets) as (keyof typeof targets)[];
  for (let round = 0; round < ROUNDS; round++) {
    // Latchkey and the peer take turns going first.
    const turn = round % 2 === 0 ? order : [order[1]!, order[0]!, order[3]!, order[2]!];
    for (const k of turn) {
      const server = k.startsWith('lk') ? latchkey : peer;
      // Enough for the warm-up at the last round's rate (or MIN_POOL), then, after the warm-up, for the measured run
      // at three times the warm-up's rate (the first seconds run cold).
      const last = results[k].at(-1);
      await pools[k].topUp(Math.max(MIN_POOL, Math.ceil((last?.rps ?? 0) * WARMUP * 1.5)));
      const topUp = (rps: number) => pools[k].topUp(Math.ceil(rps * DURATION * 3));
      results[k].push(
        await load(
          {
            name: names[k],
            url: server.url,
            path: '/token',
            body: targets[k],
            ...(server.child.pid ? { pid: server.child.pid } : {}),
            // Latchkey's work includes its database's; the peer's store is in its own process.
            database: k.startsWith('lk'),
          },
          DURATION,
          WARMUP,
          topUp,
        ),
      );
    }
    console.log(
      `token round ${round + 1}: ${order.map((k) => `${names[k]} ${Math.round(results[k][round]!.rps)}/s`).join(', ')}`,
    );
  }
  const ratio = (a: Result[], b: Result[]) => medianOf(a.map((x, i) => x.rps / b[i]!.rps));
  const m = Object.fromEntries(order.map((k) => [k, median(results[k])])) as Record<
    keyof typeof targets,
    Result
  >;
  const summary = [
    `code exchange, Latchkey / node-oidc-provider: ${ratio(results.lkCode, results.peerCode).toFixed(2)} (target ≥ 1.0); Latchkey ${Math.round(m.lkCode.rps)}/s (target ≥ 1,500/s quiet), p99 ${m.lkCode.p99} ms (target ≤ 25 ms)`,
    `refresh rotation, Latchkey / node-oidc-provider: ${ratio(results.lkRefresh, results.peerRefresh).toFixed(2)} (target ≥ 1.0); Latchkey ${Math.round(m.lkRefresh.rps)}/s (target ≥ 1,500/s quiet), p99 ${m.lkRefresh.p99} ms (target ≤ 25 ms)`,
  ];
  const us = (n: number | undefined) => (n === undefined ? '–' : Math.round(n).toLocaleString('en-US'));
  const cpuRow = (r: Result) => {
    const load = (r.loadCores * r.seconds * 1e6) / Math.max(1, r.answered);
    const own = (r.serverCpuUs ?? 0) + (r.databaseCpuUs ?? 0);
    return `| ${r.name} | ${us(r.serverCpuUs)} | ${us(r.databaseCpuUs)} | ${us(own)} | ${us(load)} |`;
  };
  const rounds = results.lkCode
    .map((_, i) => `| ${i + 1} | ${order.map((k) => Math.round(results[k][i]!.rps)).join(' | ')} |`)
    .join('\n');
  const markdown = `## /token

Code exchange (\`authorization_code\` with PKCE S256, public client) and refresh rotation (\`refresh_token\`, public
client: a new refresh token every time), against node-oidc-provider 9.13.3 with an in-memory adapter (a Map: its own development adapter keeps only 1,000
entries), doing the same
grants (bench/peer.ts; no ID token: the scope has no \`openid\`). Each request spends a code or refresh token minted
beforehand, each in a grant of its own: Latchkey's through its store code, the peer's through its own models. After
minting Latchkey's, the bench runs \`VACUUM (ANALYZE)\` on the tables minting filled, as pgbench vacuums before its runs,
so that autovacuum does not clean up after the minting during the measured run. Latchkey
is instance A of the /introspect rows (Postgres). Latchkey and the peer take turns going first.

${TABLE_HEAD}
${order.map((k) => row(m[k])).join('\n')}

- ${summary.join('\n- ')}

CPU a request in the median round, in µs (from /proc; two cores give 2,000,000 µs a second to share): the server's
process; every PostgreSQL process (Latchkey's rows only: the peer keeps its store in its own process); the two
together; and the bench process sending the requests.

| target | server | PostgreSQL | server + PostgreSQL | bench process |
| --- | ---: | ---: | ---: | ---: |
${order.map((k) => cpuRow(m[k])).join('\n')}

Every round (req/s):

| round | ${order.map((k) => names[k]).join(' | ')} |
| ---: | ---: | ---: | ---: | ---: |
${rounds}
`;
  return { markdown, summary };
}
