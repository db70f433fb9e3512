// Client traces in the database (README: Client traces): the newest TRACE_STEPS per client and no more, nothing for
// made-up client_ids, gone with their client, and a recorder that folds repeats, bounds its queue and never throws.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { ManualClock } from '../../src/lib/clock.ts';
import { createStores } from '../../src/store/index.ts';
import { type TraceStore, traceStore } from '../../src/store/traces.ts';
import { ORPHAN_TTL_MS, TraceRecorder } from '../../src/trace/recorder.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';
import { addClient } from '../helpers/server.ts';

const quiet = { warn() {} };

forEachDatabase('client traces', (kind) => {
  let t: TestDatabase;
  let store: TraceStore;
  let stores: ReturnType<typeof createStores>;
  const clock = new ManualClock(new Date('2026-11-30T10:00:00Z'));
  before(async () => {
    t = await migratedDatabase(kind);
    store = traceStore(t.db.prisma);
    stores = createStores(t.db);
  });
  after(() => t.cleanup());

  function recorder(steps: number, options: Partial<ConstructorParameters<typeof TraceRecorder>[0]> = {}) {
    return new TraceRecorder({ store, clock, steps, log: quiet, ...options });
  }

  it('keeps only the newest N steps of a client, oldest first, however many were written', async () => {
    const { clientId } = await addClient(stores);
    const other = await addClient(stores);
    const r = recorder(5);
    for (let i = 1; i <= 8; i++) {
      clock.advance(1);
      r.record({ clientId, step: 'authorize', outcome: 'ok', detail: `step ${i}` });
      if (i === 3) await r.flush(); // two batches: the prune also removes rows of an earlier batch
    }
    for (let i = 1; i <= 2; i++) r.record({ clientId: other.clientId, step: 'token', outcome: `e${i}` });
    await r.flush();
    const kept = await store.list(clientId, 100);
    assert.deepEqual(
      kept.map((s) => s.detail),
      ['step 4', 'step 5', 'step 6', 'step 7', 'step 8'],
    );
    assert.equal(await t.db.prisma.clientTrace.count({ where: { clientId } }), 5);
    assert.equal((await store.list(other.clientId, 100)).length, 2, "another client's steps are its own");
    assert.deepEqual(
      (await store.list(clientId, 2)).map((s) => s.detail),
      ['step 7', 'step 8'],
    );
  });

  it('records nothing for a client_id that names no client, except a CIMD fetch; 0 records nothing at all', async () => {
    const r = recorder(10);
    r.record({ clientId: 'made-up', step: 'token', outcome: 'invalid_client' });
    r.record({
      clientId: 'https://app.example/cimd.json',
      step: 'cimd_fetch',
      outcome: 'failed',
      detail: 'x',
    });
    await r.flush();
    assert.equal((await store.list('made-up', 10)).length, 0);
    assert.equal((await store.list('https://app.example/cimd.json', 10)).length, 1);
    const { clientId } = await addClient(stores);
    const off = recorder(0);
    off.record({ clientId, step: 'token', outcome: 'ok' });
    await off.flush();
    assert.equal(off.enabled, false);
    assert.equal((await store.list(clientId, 10)).length, 0);
  });

  it('folds identical steps in a row into one row with a count, and keeps the time of the last', async () => {
    const { clientId } = await addClient(stores);
    const r = recorder(10);
    const step = { clientId, step: 'introspection', outcome: 'inactive', detail: 'token expired' } as const;
    r.record({ ...step, resource: 'https://mcp.example.com/mcp' });
    clock.advance(5);
    r.record({ ...step, resource: 'https://mcp.example.com/mcp' });
    r.record({ ...step, resource: 'https://mcp.example.com/mcp' });
    r.record({ clientId, step: 'token', outcome: 'ok' });
    await r.flush();
    const rows = await store.list(clientId, 10);
    assert.deepEqual(
      rows.map((s) => [s.step, s.repeat]),
      [
        ['introspection', 3],
        ['token', 1],
      ],
    );
    assert.equal(rows[0]!.at.getTime(), clock.now().getTime());
  });

  it('drops and counts steps beyond its queue, and a failed write never reaches the caller', async () => {
    const { clientId } = await addClient(stores);
    const r = recorder(10, { maxQueued: 2 });
    for (let i = 0; i < 5; i++) r.record({ clientId, step: 'token', outcome: `e${i}` });
    assert.equal(r.dropped, 3);
    await r.flush();
    assert.equal((await store.list(clientId, 10)).length, 2);
    const failing = new TraceRecorder({
      store: {
        append: () => Promise.reject(new Error('database gone')),
        pruneOrphans: () => Promise.resolve(0),
      },
      clock,
      steps: 10,
      log: quiet,
    });
    failing.record({ clientId, step: 'token', outcome: 'ok' });
    await failing.flush(); // resolves
    assert.equal(failing.failed, 1);
  });

  it('deleting a client deletes its trace; steps of client_ids without a client go after a day', async () => {
    const { clientId } = await addClient(stores);
    const r = recorder(10);
    r.record({ clientId, step: 'token', outcome: 'ok' });
    r.record({ clientId: 'https://gone.example/cimd.json', step: 'cimd_fetch', outcome: 'failed' });
    await r.flush();
    assert.equal(await stores.clients.delete(clientId), true);
    assert.equal((await store.list(clientId, 10)).length, 0);
    assert.equal(
      await store.pruneOrphans(new Date(clock.now().getTime() - ORPHAN_TTL_MS)),
      0,
      'not yet a day',
    );
    assert.ok((await store.pruneOrphans(new Date(clock.now().getTime() + 1000))) >= 1);
    assert.equal((await store.list('https://gone.example/cimd.json', 10)).length, 0);
  });
});
