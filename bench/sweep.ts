// The sweep row of `npm run bench` (bench/run.ts): a backlog of BENCH_SWEEP_ROWS (default 1,000,000) expired rows —
// grants, each with an expired code, access token and refresh token — swept by a Latchkey server's own sweeper
// (src/sweeper.ts: bounded runs, each continuing where the last stopped), while /introspect of unknown tokens (every
// one a database lookup) runs against that server. Reports the sweep's wall time and introspection p99 before and
// during it.
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { openPostgres } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { randomToken } from '../src/lib/crypto.ts';
import { createPostgresDatabase } from '../test/helpers/db.ts';
import { load, medianOf, type Result, type Section, startLatchkey, stopAll } from './common.ts';
import { seedLatchkey } from './seed.ts';

const ROWS = Number(process.env.BENCH_SWEEP_ROWS ?? 1_000_000);
const LIVE_GRANTS = 1000;
const MAX_WAIT_MS = Number(process.env.BENCH_SWEEP_MAX_S ?? 300) * 1000;

interface SweptLine {
  time: number;
  ms: number;
  complete: boolean;
}

export async function sweepRows(): Promise<Section> {
  const pg_ = await createPostgresDatabase();
  const children = [];
  try {
    const db = openPostgres({ url: pg_.url, poolSize: 2 });
    await migrate(db);
    const seeded = await seedLatchkey(pg_.url);
    const grants = Math.floor(ROWS / 4);
    const seedStart = performance.now();
    // One client of its own, without the application pool's query timeout: the backlog takes minutes to make.
    const c = new pg.Client({ connectionString: pg_.url });
    await c.connect();
    try {
      const ids = await c.query<{ user_id: string; client_id: string; resource_server_id: string }>(
        `SELECT (SELECT id FROM users LIMIT 1) AS user_id, (SELECT id FROM clients LIMIT 1) AS client_id,
           (SELECT id FROM resource_servers LIMIT 1) AS resource_server_id`,
      );
      const fk = ids.rows[0];
      if (!fk?.user_id) throw new Error('seeding made no user, client or resource server');
      // Grants created 40 days ago, one millisecond apart; the live ones are the newest of them.
      const statements = [
        `INSERT INTO grants (id, user_id, client_id, resource_server_id, scopes, redirect_uri, created_at)
         SELECT gen_random_uuid(), '${fk.user_id}', '${fk.client_id}', '${fk.resource_server_id}', '{}',
           'http://127.0.0.1:9/cb', now() - interval '40 days' + i * interval '1 ms'
         FROM generate_series(1, ${grants + LIVE_GRANTS}) i`,
        `CREATE TEMP TABLE backlog AS SELECT id, created_at, row_number() OVER (ORDER BY created_at) AS n
           FROM grants WHERE created_at < now() - interval '39 days'`,
        `INSERT INTO authorization_codes (id, code_hash, grant_id, user_id, client_id, resource_server_id, redirect_uri,
           code_challenge, scopes, created_at, expires_at, used_at)
         SELECT gen_random_uuid(), 'c' || b.id, b.id, '${fk.user_id}', '${fk.client_id}', '${fk.resource_server_id}',
           'http://127.0.0.1:9/cb', 'x', '{}', b.created_at, b.created_at + interval '1 minute', b.created_at
         FROM backlog b WHERE b.n <= ${grants}`,
        `INSERT INTO access_tokens (id, token_hash, grant_id, scopes, created_at, expires_at)
         SELECT gen_random_uuid(), 'a' || b.id, b.id, '{}', b.created_at, b.created_at + interval '1 hour' FROM backlog b`,
        `INSERT INTO refresh_tokens (id, token_hash, grant_id, scopes, created_at, expires_at)
         SELECT gen_random_uuid(), 'r' || b.id, b.id, '{}', b.created_at,
           CASE WHEN b.n <= ${grants} THEN b.created_at + interval '30 days' ELSE now() + interval '30 days' END
         FROM backlog b`,
        'ANALYZE',
      ];
      for (const sql of statements) await c.query(sql);
    } finally {
      await c.end();
    }
    const seedS = (performance.now() - seedStart) / 1000;
    const count = async (table: string) =>
      Number(
        (
          await db.withConnection((c) => c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`))
        )[0]?.n,
      );
    const tables = ['grants', 'authorization_codes', 'access_tokens', 'refresh_tokens'];
    const before = (await Promise.all(tables.map(count))).reduce((a, b) => a + b, 0);
    console.log(`sweep: seeded ${before} rows in ${seedS.toFixed(0)} s`);

    const lk = await startLatchkey({ DATABASE_URL: pg_.url });
    children.push(lk.child);
    const listeningAt = Date.now();
    const swept: SweptLine[] = [];
    let buf = '';
    lk.child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        if (!l.includes('swept expired rows')) continue;
        swept.push(JSON.parse(l) as SweptLine);
      }
    });
    const target = {
      name: '',
      url: lk.url,
      path: '/introspect',
      headers: { authorization: seeded.introspectAuthorization },
      body: () => `token=${randomToken(32, 'lk_at_')}&token_type_hint=access_token`,
    };
    // Before: the sweeper's first run comes 30 s after the start (src/sweeper.ts).
    const beforeRun = await load({ ...target, name: 'before the sweep' }, 15, 2);
    if (Date.now() - listeningAt > 29_000) console.log('sweep: the "before" load ran into the sweep');
    const chunks: (Result & { start: number; end: number })[] = [];
    const deadline = Date.now() + MAX_WAIT_MS;
    while (!swept.some((l) => l.complete) && Date.now() < deadline) {
      const start = Date.now();
      const r = await load({ ...target, name: 'during the sweep' }, 5, 0);
      chunks.push({ ...r, start, end: Date.now() });
    }
    const done = swept.find((l) => l.complete);
    const sweepStart = swept[0] ? swept[0].time - swept[0].ms : Number.NaN;
    const sweepEnd = done?.time ?? Date.now();
    const during = chunks.filter((c) => c.end > sweepStart && c.start < sweepEnd);
    const wallS = (sweepEnd - sweepStart) / 1000;
    const workS = swept.reduce((a, l) => a + l.ms, 0) / 1000;
    const after = (await Promise.all(tables.map(count))).reduce((a, b) => a + b, 0);
    // (The log line's counts are no help: the logger redacts keys named like tokens.)
    const removed = before - after;
    await seeded.close();
    await db.close();
    const duringP99 = medianOf(during.map((c) => c.p99));
    const worstP99 = Math.max(...during.map((c) => c.p99));
    const summary = [
      done
        ? `sweep of ${before} rows (${removed} removed, ${after} left: the live grants' rows): ${wallS.toFixed(1)} s wall, ${workS.toFixed(1)} s working, in ${swept.length} runs (target ≤ 60 s)`
        : `sweep of ${before} rows did not finish within ${MAX_WAIT_MS / 1000} s (${removed} removed in ${swept.length} runs)`,
      `/introspect (unknown tokens) p99 before the sweep ${beforeRun.p99} ms, during it ${duringP99} ms (median of ${during.length} 5-s chunks; worst ${worstP99} ms); target: within 2× of before`,
    ];
    const markdown = `## Sweeping a backlog

${before} rows in one Postgres database, made with \`generate_series\` (${seedS.toFixed(0)} s, then \`ANALYZE\`):
${grants} expired grants, each with an expired code, access token and refresh token, plus ${LIVE_GRANTS} old grants
whose refresh token is live (their expired access tokens go, the grants and refresh tokens stay). One Latchkey
instance sweeps it with its own sweeper (runs of at most 5 s, the next 1 s after), while autocannon sends
/introspect of unknown tokens to the same instance.

| | req/s | p50 ms | p99 ms |
| --- | ---: | ---: | ---: |
| /introspect before the sweep | ${Math.round(beforeRun.rps)} | ${beforeRun.p50} | ${beforeRun.p99} |
${during.map((c, i) => `| /introspect during the sweep, chunk ${i + 1} | ${Math.round(c.rps)} | ${c.p50} | ${c.p99} |`).join('\n')}

- ${summary.join('\n- ')}
`;
    return { markdown, summary, failed: !done };
  } finally {
    await stopAll(children);
    await pg_.drop();
  }
}
