// CIMD fetch outcomes and first registrations as counted for /metrics (README: Metrics): a fetched document, a
// cached one (no fetch, not counted), a stale one served while its host fails, and a refused one.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { ManualClock } from '../../src/lib/clock.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { createClientResolver } from '../../src/oauth/clients.ts';
import { createStores } from '../../src/store/index.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';
import { documentServers, rejectsWith } from '../oauth/cimd/support.ts';

const { tls, httpsServer } = documentServers();

forEachDatabase('CIMD fetches counted', (kind) => {
  let t: TestDatabase;
  before(async () => {
    t = await migratedDatabase(kind);
  });
  after(() => t.cleanup());

  it('counts fetched, stale-if-error and refused resolutions, and the first one as a registration', async () => {
    const metrics = createMetrics({});
    const count = async (name: string, label: string) => {
      const metric = await metrics.registry.getSingleMetric(name)?.get();
      return metric?.values.find((v) => Object.values(v.labels).includes(label))?.value ?? 0;
    };
    const clock = new ManualClock();
    const config = { ...loadConfig({}), cimdAllowLoopback: true };
    const resolver = createClientResolver(createStores(t.db), {
      config,
      clock,
      cimd: { ca: tls.cert },
      metrics,
    });
    const p = `/${kind}/counted`;
    const url = httpsServer.serve(p, undefined, { 'cache-control': 'max-age=600' });

    await resolver.resolve(url); // fetched, and a new client
    await resolver.resolve(url); // fresh in the cache: no fetch
    httpsServer.routes.set(p, (_req, res) => res.writeHead(503).end());
    clock.advance(600 + 60);
    await resolver.resolve(url); // stale, served while the host fails
    clock.advance(2 * 3600);
    await rejectsWith(resolver.resolve(url), /HTTP 503/); // past the stale bound: refused

    assert.equal(await count('latchkey_cimd_fetches_total', 'fetched'), 1);
    assert.equal(await count('latchkey_cimd_fetches_total', 'stale_if_error'), 1);
    assert.equal(await count('latchkey_cimd_fetches_total', 'refused'), 1);
    assert.equal(await count('latchkey_client_registrations_total', 'cimd'), 1);
    assert.equal(await count('latchkey_client_registrations_total', 'dcr'), 0);
    assert.equal((await metrics.registry.metrics()).includes(url), false);
  });
});
