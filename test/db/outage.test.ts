// Issue 10, acceptance 3: a database outage under load. Latchkey runs (buildApp on a real listener) on a PostgreSQL
// server this test owns (its own initdb directory and port; the shared server is never touched). Refreshes,
// introspections and code exchanges run concurrently, bounded in number; the server is stopped as a crash would
// stop it (`pg_ctl stop -m immediate`). While it is down the API answers 503 temporarily_unavailable with
// Retry-After and a page answers the friendly 503 page (RFC 6749 §5.2, RFC 9110 §15.6.4); never a 500. Started
// again on the same directory and port, Latchkey recovers without a restart, and no refresh rotation is left
// half-done: every token family refreshes with the last refresh token its client received (a client that got no
// answer keeps its previous token, which still works: its rotation rolled back, or it committed and the kept
// answer of the reuse window, RFC 9700 §4.14.2, hands the client the same pair again).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openPostgres } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { hashSecret, randomToken } from '../../src/lib/crypto.ts';
import { basicAuth } from '../helpers/basic-auth.ts';
import type { TestDatabase } from '../helpers/db.ts';
import { exchangeCode, obtainCode, postForm, refreshToken, type TokenResponse } from '../helpers/flow.ts';
import { PostgresInstance, postgresBinDir } from '../helpers/postgres-instance.ts';
import {
  addClient,
  addResourceServer,
  addUser,
  startServer,
  type TestClient,
  type TestResourceServer,
  type TestServer,
} from '../helpers/server.ts';

const BIN = postgresBinDir();
const FAMILIES = 6;
const INTROSPECTORS = 2;
const CODES = 4;
/** Each worker's requests are bounded; far more than the test needs. */
const MAX_ITERATIONS = 400;

interface Family {
  client: TestClient;
  /** The last refresh token this client received. */
  refresh: string;
  access: string;
  grantId: string;
}

describe('a PostgreSQL outage under load [postgres, own instance]', {
  skip: !BIN && 'no PostgreSQL binaries',
}, () => {
  const pgServer = new PostgresInstance(BIN ?? '');
  let database: TestDatabase;
  let server: TestServer;
  let rs: TestResourceServer;
  const families: Family[] = [];
  const codes: { client: TestClient; code: string }[] = [];

  before(async () => {
    await pgServer.init();
    await pgServer.start();
    const url = await pgServer.createDatabase('latchkey');
    const db = openPostgres({ url, poolSize: 10 });
    await migrate(db);
    database = { kind: 'postgres', db, url, cleanup: () => db.close() };
    server = await startServer('postgres', { database, env: { REFRESH_REUSE_WINDOW: '60' } });
    rs = await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    const email = await addUser(server.stores);
    for (let i = 0; i < FAMILIES; i++) {
      const client = await addClient(server.stores, { authMethod: i % 2 ? 'client_secret_post' : 'none' });
      const t = await exchangeCode(server, client, await obtainCode(server, client, email));
      assert.equal(t.status, 200);
      const row = await server.stores.tokens.findRefreshToken(String(t.body.refresh_token));
      families.push({
        client,
        refresh: String(t.body.refresh_token),
        access: String(t.body.access_token),
        grantId: row!.grantId,
      });
    }
    for (let i = 0; i < CODES; i++) {
      const client = families[i % FAMILIES]!.client;
      codes.push({ client, code: await obtainCode(server, client, email) });
    }
  });

  after(async () => {
    await server?.close();
    await database?.db.close();
    await pgServer.cleanup();
  });

  it('answers 503 with Retry-After during the outage, recovers without a restart, and leaves no rotation half-done', async (t) => {
    const statuses = new Map<number, number>();
    const problems: string[] = [];
    const count = (s: number) => statuses.set(s, (statuses.get(s) ?? 0) + 1);
    /** A 503 must say temporarily_unavailable and when to retry; anything else but 200 is a problem. */
    const check = (what: string, res: TokenResponse, ok: number[] = [200]) => {
      count(res.status);
      if (res.status === 503) {
        if (res.body.error !== 'temporarily_unavailable' || !res.headers.get('retry-after')) {
          problems.push(
            `${what}: 503 without temporarily_unavailable and Retry-After: ${JSON.stringify(res.body)}`,
          );
        }
      } else if (!ok.includes(res.status)) {
        problems.push(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
      }
    };

    let recover!: () => void;
    const recovered = new Promise<void>((resolve) => {
      recover = resolve;
    });
    let stopping = false;
    let down = false;
    // Events the test waits on: each worker's successes, and its first 503 (after which it waits for recovery).
    const successes = new Map<string, number>();
    const waiters: { name: string; atLeast: number; resolve: () => void }[] = [];
    const succeeded = (name: string) => {
      successes.set(name, (successes.get(name) ?? 0) + 1);
      for (const w of [...waiters]) {
        if (w.name === name && (successes.get(name) ?? 0) >= w.atLeast) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    };
    const successesReach = (name: string, atLeast: number) =>
      (successes.get(name) ?? 0) >= atLeast
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ name, atLeast, resolve }));
    const parked = new Map<string, Promise<void>>();
    const parkedSignals = new Map<string, () => void>();
    const names: string[] = [];
    const worker = (name: string, step: () => Promise<'ok' | 'unavailable' | 'finished'>) => {
      names.push(name);
      parked.set(name, new Promise<void>((resolve) => parkedSignals.set(name, resolve)));
      return (async () => {
        for (let i = 0; i < MAX_ITERATIONS && !stopping; i++) {
          const outcome = await step();
          if (outcome === 'finished') return;
          if (outcome === 'ok') succeeded(name);
          // A worker that met the outage (or whose answer came from a cache while it lasts) waits for recovery
          // instead of spinning.
          if (outcome === 'unavailable' || down) {
            parkedSignals.get(name)!();
            await recovered;
          }
        }
        if (!stopping) problems.push(`${name} reached its bound of ${MAX_ITERATIONS} requests`);
      })();
    };

    const refreshers = families.map((f, i) =>
      worker(`refresh ${i}`, async () => {
        const res = await refreshToken(server, f.client, f.refresh);
        check(`refresh ${i}`, res);
        if (res.status !== 200) return 'unavailable';
        f.refresh = String(res.body.refresh_token);
        f.access = String(res.body.access_token);
        return 'ok';
      }),
    );
    const introspectors = Array.from({ length: INTROSPECTORS }, (_, i) =>
      worker(`introspect ${i}`, async () => {
        // One asks about tokens never seen (no cache can answer), the other about a family's current access token.
        const token = i % 2 ? randomToken(32, 'lk_at_') : families[i]!.access;
        const res = await postForm(
          `${server.url}/introspect`,
          { token },
          { authorization: basicAuth(rs.clientId, rs.clientSecret) },
        );
        check(`introspect ${i}`, res);
        return res.status === 200 ? 'ok' : 'unavailable';
      }),
    );
    const exchanger = worker('exchange', async () => {
      const next = codes.shift();
      if (!next) return 'finished';
      const res = await exchangeCode(server, next.client, next.code);
      check('exchange', res);
      return res.status === 200 ? 'ok' : 'unavailable';
    });
    const all = [...refreshers, ...introspectors, exchanger];

    // Under load: every refresher and introspector has succeeded twice.
    await Promise.all(names.filter((n) => n !== 'exchange').map((n) => successesReach(n, 2)));
    const stoppedAt = performance.now();
    await pgServer.stop('immediate');
    down = true;

    // The outage, seen directly: an API request, an introspection of a token no cache holds, and a page.
    const token = await refreshToken(server, families[0]!.client, randomToken(32, 'lk_rt_'));
    assert.equal(token.status, 503, JSON.stringify(token.body));
    assert.equal(token.body.error, 'temporarily_unavailable');
    assert.match(token.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
    assert.equal(token.headers.get('cache-control'), 'no-store');
    const introspection = await postForm(
      `${server.url}/introspect`,
      { token: randomToken(32, 'lk_at_') },
      { authorization: basicAuth(rs.clientId, rs.clientSecret) },
    );
    assert.equal(introspection.status, 503);
    assert.equal(introspection.body.error, 'temporarily_unavailable');
    const page = await fetch(`${server.url}/authorize?client_id=${randomToken(8)}&response_type=code`);
    const html = await page.text();
    assert.equal(page.status, 503);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
    assert.match(html, /Latchkey is briefly unavailable/);
    assert.equal((await fetch(`${server.url}/readyz`)).status, 503);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    // Every worker has met the outage and waits (the code exchanger may have run out of codes before).
    await Promise.all(names.filter((n) => n !== 'exchange').map((n) => parked.get(n)));
    const outageSeconds = (performance.now() - stoppedAt) / 1000;

    await pgServer.start(); // same directory, same port: Latchkey's DATABASE_URL is unchanged
    const startedAt = performance.now();
    // Each try waits for the server's own readiness probe (a new connection and SELECT 1, at most 2 s); a dead
    // pooled connection fails one try and is dropped, so a few tries suffice. Bounded: 50 tries.
    let ready = false;
    for (let i = 0; i < 50 && !ready; i++) ready = (await fetch(`${server.url}/readyz`)).status === 200;
    assert.ok(ready, '/readyz turns 200 without a restart');
    const readySeconds = (performance.now() - startedAt) / 1000;
    down = false;
    recover();

    // Every family refreshes again, twice, with the last token its client received.
    const before = new Map(names.map((n) => [n, successes.get(n) ?? 0]));
    await Promise.all(
      names.filter((n) => n !== 'exchange').map((n) => successesReach(n, (before.get(n) ?? 0) + 2)),
    );
    stopping = true;
    await Promise.all(all);
    assert.deepEqual(problems, []);
    assert.equal(statuses.get(500) ?? 0, 0, 'never a 500');
    assert.ok((statuses.get(503) ?? 0) > 0, 'the load met the outage');

    // No rotation half-done: each grant stands, and its one live refresh token is the one its client holds.
    const prisma = database.db.prisma;
    for (const f of families) {
      const grant = await prisma.grant.findUniqueOrThrow({ where: { id: f.grantId } });
      assert.equal(grant.revokedAt, null, 'no family was revoked as a replay');
      const live = await prisma.refreshToken.findMany({
        where: { grantId: f.grantId, rotatedAt: null, revokedAt: null },
      });
      assert.deepEqual(
        live.map((r) => r.tokenHash),
        [hashSecret(f.refresh)],
      );
      assert.equal((await refreshToken(server, f.client, f.refresh)).status, 200);
    }
    t.diagnostic(
      `outage ${outageSeconds.toFixed(1)} s; ready ${readySeconds.toFixed(2)} s after Postgres was back; ` +
        `answers ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
  });
});
