// Revocation on several instances of one Postgres database (README: How it is built; issue 12 acceptance 5): with
// introspection load on all three (server processes), a token revoked through any instance (POST /revoke) or by the
// CLI reads inactive on the very next call to every instance. An instance whose heartbeat lapsed is skipped by the
// waiters and, while its notifications are held up, serves no stale answer from its cache; a live instance that has
// not heard of a revocation yet holds the answer until it has. Postgres only: the embedded database is one instance.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import type { InstanceOptions } from '../../src/changes.ts';
import { grantCommands } from '../../src/cli/grants.ts';
import { runCli } from '../../src/cli/run.ts';
import { loadConfig } from '../../src/config.ts';
import { type Database, openPostgres } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { type Clock, ManualClock } from '../../src/lib/clock.ts';
import { createStores, type Stores } from '../../src/store/index.ts';
import { instanceStore } from '../../src/store/instances.ts';
import { basicAuth } from '../helpers/basic-auth.ts';
import { createPostgresDatabase, DB_KINDS } from '../helpers/db.ts';
import { type CapturedLogs, captureLogs } from '../helpers/log-capture.ts';
import { freePort } from '../helpers/net.ts';
import {
  addClient,
  addResourceServer,
  introspect,
  type TestClient,
  type TestResourceServer,
} from '../helpers/server.ts';
import { spawnServer, waitUntilReady } from '../helpers/server-process.ts';
import { ManualTimers } from '../helpers/timers.ts';

const skip = !DB_KINDS.includes('postgres') && 'Postgres only (the embedded database is a single instance)';

interface Instance {
  url: string;
  app: FastifyInstance;
  logs: CapturedLogs;
  close(): Promise<void>;
}

/** An instance as a separate server would be: its own pool, listeners, heartbeat and caches. */
async function startInstance(db: Database, clock: Clock, instance: InstanceOptions = {}): Promise<Instance> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = loadConfig({ ISSUER: url, PORT: String(port), LOG_LEVEL: 'warn' });
  const logs = captureLogs('warn');
  const app = await buildApp({ config, db, clock, logger: logs.logger, instance });
  await app.listen({ port, host: '127.0.0.1' });
  return {
    url,
    app,
    logs,
    async close() {
      await app.close();
      await db.close();
    },
  };
}

/** A database whose notifications the test can hold up, as a paused process's would be, and let through later. */
function holdable(db: Database) {
  let holding = false;
  const held: (() => void)[] = [];
  const wrapped: Database = {
    ...db,
    listen: (channel, onMessage, onState) =>
      db.listen(channel, (p) => (holding ? held.push(() => onMessage(p)) : onMessage(p)), onState),
  };
  return {
    db: wrapped,
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      for (const deliver of held.splice(0)) deliver();
    },
  };
}

async function issue(stores: Stores, client: TestClient, rs: TestResourceServer): Promise<string> {
  const c = (await stores.clients.findByClientId(client.clientId))!;
  const r = (await stores.resourceServers.findByUri(rs.uri))!;
  const t = await stores.tokens.issueClientGrant(
    { clientId: c.id, resourceServerId: r.id, scopes: [] },
    3600,
    new Date(),
  );
  return t.accessToken;
}

async function revokeOver(instance: { url: string }, client: TestClient, token: string): Promise<void> {
  const res = await fetch(`${instance.url}/revoke`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: basicAuth(client.clientId, client.clientSecret!),
    },
    body: new URLSearchParams({ token }),
  });
  assert.equal(res.status, 200);
}

async function revokeWithCli(databaseUrl: string, stores: Stores, token: string): Promise<void> {
  const grant = (await stores.tokens.findAccessToken(token))!.grantId;
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (d) => (err += d));
  const code = await runCli(['grant', 'revoke', grant], grantCommands, {
    io: { stdin: process.stdin, stdout: new PassThrough(), stderr },
    env: { DATABASE_URL: databaseUrl },
  });
  assert.equal(code, 0, err);
  assert.doesNotMatch(err, /warning/, err);
}

/** Concurrent /introspect calls on every instance until end() (bounded in count too), all expected to be 200. */
function introspectionLoad(
  instances: { url: string }[],
  rs: TestResourceServer,
  tokens: string[],
  perInstance = 3,
) {
  const MAX = 200_000;
  let stopped = false;
  let sent = 0;
  const failures: string[] = [];
  const worker = async (instance: { url: string }) => {
    while (!stopped && sent < MAX) {
      const token = tokens[sent++ % tokens.length]!;
      const res = await fetch(`${instance.url}/introspect`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: basicAuth(rs.clientId, rs.clientSecret),
        },
        body: new URLSearchParams({ token }),
      });
      await res.arrayBuffer();
      if (res.status !== 200) failures.push(`${instance.url}: ${res.status}`);
    }
  };
  const running = Promise.all(instances.flatMap((i) => Array.from({ length: perInstance }, () => worker(i))));
  return {
    async end() {
      stopped = true;
      await running;
      return { sent, failures };
    },
  };
}

describe('revocation on three instances [postgres]', { skip }, () => {
  let pg: Awaited<ReturnType<typeof createPostgresDatabase>>;
  let admin: Database;
  let stores: Stores;
  const instances: Instance[] = [];
  let client: TestClient;
  let rs: TestResourceServer;

  before(async () => {
    pg = await createPostgresDatabase();
    admin = openPostgres({ url: pg.url, poolSize: 4 });
    await migrate(admin);
    stores = createStores(admin);
    client = await addClient(stores, {
      authMethod: 'client_secret_basic',
      grantTypes: ['client_credentials'],
    });
    rs = await addResourceServer(stores, 'https://mcp.example.com/mcp');
  });
  after(async () => {
    for (const i of instances) await i.close();
    await admin?.close();
    await pg?.drop();
  });

  it('20 tokens revoked round-robin (/revoke on each instance, and the CLI) read inactive on the very next call to every instance', async () => {
    // Three server processes, exactly as `npm start` runs them.
    const servers = Array.from({ length: 3 }, () =>
      spawnServer({ env: { DATABASE_URL: pg.url, ISSUER: 'http://127.0.0.1:1' } }),
    );
    try {
      const urls = await Promise.all(servers.map((s) => waitUntilReady(s)));
      const targets = urls.map((url) => ({ url }));
      assert.equal((await instanceStore(admin.prisma).list()).length, 3);
      const steady = await Promise.all(Array.from({ length: 10 }, () => issue(stores, client, rs)));
      const doomed = await Promise.all(Array.from({ length: 20 }, () => issue(stores, client, rs)));
      const load = introspectionLoad(targets, rs, [...steady, ...doomed]);
      try {
        for (const [n, token] of doomed.entries()) {
          // Cached on every instance first.
          for (const url of urls) assert.equal((await introspect(url, rs, token)).active, true);
          if (n % 4 === 3) await revokeWithCli(pg.url, stores, token);
          else await revokeOver(targets[n % 4]!, client, token);
          const next = await Promise.all(urls.map((url) => introspect(url, rs, token)));
          assert.deepEqual(
            next.map((a) => a.active),
            [false, false, false],
            `token ${n} after revocation through ${n % 4 === 3 ? 'the CLI' : `instance ${n % 4}`}`,
          );
        }
      } finally {
        const { sent, failures } = await load.end();
        assert.deepEqual(failures, []);
        assert.ok(sent > 0);
      }
      for (const token of steady) {
        for (const url of urls) assert.equal((await introspect(url, rs, token)).active, true);
      }
      // Every wait ended with every acknowledgement, none at its bound.
      for (const s of servers)
        assert.deepEqual(
          s.logs().filter((l) => Number(l.level) >= 40),
          [],
        );
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
    // A clean stop removes the rows.
    assert.deepEqual(await instanceStore(admin.prisma).list(), []);
  });

  it('an instance whose heartbeat lapsed is skipped, and serves no stale answer until it is back', async () => {
    const clock = new ManualClock();
    const options = { heartbeatMs: 1000, lapseMs: 3000, ackTimeoutMs: 2000 };
    // Timers only the test fires: nothing here happens on real time (an unfired ack bound would hang the test).
    const aTimers = new ManualTimers();
    const [a, b] = [
      await startInstance(openPostgres({ url: pg.url }), clock, { ...options, timers: aTimers }),
      await startInstance(openPostgres({ url: pg.url }), clock, { ...options, timers: new ManualTimers() }),
    ];
    const paused = holdable(openPostgres({ url: pg.url }));
    const c = await startInstance(paused.db, clock, { ...options, timers: new ManualTimers() });
    instances.push(a, b, c);
    const cId = c.app.latchkey.changes.instanceId;
    const [first, second] = [await issue(stores, client, rs), await issue(stores, client, rs)];
    for (const i of instances) assert.equal((await introspect(i.url, rs, first)).active, true);

    // C stops: its heartbeat timer does not run and its notifications wait in its connection. A and B beat on.
    paused.hold();
    clock.advance(options.lapseMs / 1000 + 1);
    await a.app.latchkey.changes.heartbeat();
    await b.app.latchkey.changes.heartbeat();
    assert.ok(
      !(await instanceStore(admin.prisma).live(new Date(clock.now().getTime() - options.lapseMs))).includes(
        cId,
      ),
    );

    // Revocation through A answers without C (A's bound never fires, so a wait for C would never end).
    await revokeOver(a, client, first);
    assert.deepEqual(await a.app.latchkey.changes.flushConfirmed(), {
      waitedFor: [b.app.latchkey.changes.instanceId],
      missing: [],
    });
    // C has not heard of it, yet answers from the database: its own heartbeat is stale.
    for (const i of instances) assert.equal((await introspect(i.url, rs, first)).active, false);

    // C comes back: the held notifications arrive, a heartbeat works, and the others wait for it again.
    paused.release();
    assert.equal(await c.app.latchkey.changes.heartbeat(), true);
    for (const i of instances) assert.equal((await introspect(i.url, rs, second)).active, true);
    assert.equal((await introspect(c.url, rs, first)).active, false);
    await revokeOver(b, client, second);
    for (const i of instances) assert.equal((await introspect(i.url, rs, second)).active, false);
    assert.deepEqual(
      (await b.app.latchkey.changes.flushConfirmed()).waitedFor.sort(),
      [a, c].map((i) => i.app.latchkey.changes.instanceId).sort(),
    );

    // A live instance that has not yet heard of a revocation holds the answer until it has (and acknowledged).
    const third = await issue(stores, client, rs);
    for (const i of instances) assert.equal((await introspect(i.url, rs, third)).active, true);
    paused.hold();
    let answered = false;
    const revoking = revokeOver(a, client, third).then(() => {
      answered = true;
    });
    await aTimers.armed(2); // its heartbeat's timer, and now its wait's
    // B has acknowledged; C has not heard yet, and its cache would still say active: A must not have answered.
    assert.equal(answered, false);
    assert.equal((await introspect(c.url, rs, third)).active, true, 'C has not heard of it yet');
    paused.release();
    await revoking;
    for (const i of instances) assert.equal((await introspect(i.url, rs, third)).active, false);
  });
});
