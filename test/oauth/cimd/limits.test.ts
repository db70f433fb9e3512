// Client ID Metadata Document fetches are not an amplifier (draft-ietf-oauth-client-id-metadata-document-01 §6):
// a failed fetch is remembered for CIMD_FAILURE_TTL, and each host gets at most CIMD_HOST_FETCH_LIMIT fetches a
// minute. Counted as requests arriving at document servers on loopback; time moves on a ManualClock.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { loadConfig } from '../../../src/config.ts';
import { ManualClock } from '../../../src/lib/clock.ts';
import { CIMD_HOST_WINDOW } from '../../../src/oauth/cimd/index.ts';
import { createClientResolver } from '../../../src/oauth/clients.ts';
import { createStores } from '../../../src/store/index.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../../helpers/db.ts';
import { tokenRequest } from '../../helpers/flow.ts';
import { startServer } from '../../helpers/server.ts';
import { documentFor, documentServers, fakeLookup, rejectsWith } from './support.ts';

const { tls, httpsServer } = documentServers();
const FAILURE_TTL = 30;
const HOST_LIMIT = 4;

forEachDatabase('CIMD fetch limits', (kind) => {
  let t: TestDatabase;
  before(async () => {
    t = await migratedDatabase(kind);
  });
  after(() => t.cleanup());

  const config = {
    ...loadConfig({ CIMD_FAILURE_TTL: String(FAILURE_TTL), CIMD_HOST_FETCH_LIMIT: String(HOST_LIMIT) }),
    cimdAllowLoopback: true,
  };
  const resolverFor = (clock: ManualClock) =>
    createClientResolver(createStores(t.db), {
      config,
      clock,
      cimd: { ca: tls.cert, lookup: fakeLookup({ 'client.test': ['127.0.0.1'] }) },
    });
  const path = (name: string) => `/${kind}/limits/${name}`;
  const hitsUnder = (prefix: string) =>
    [...httpsServer.hits].filter(([p]) => p.startsWith(prefix)).reduce((n, [, hits]) => n + hits, 0);

  it('remembers a failed fetch: many requests for a bad URL within CIMD_FAILURE_TTL make one outbound fetch', async () => {
    const clock = new ManualClock();
    const p = path('missing');
    const url = `${httpsServer.origin}${p}`;
    httpsServer.routes.set(p, (_req, res) => res.writeHead(404).end());
    const resolver = resolverFor(clock);
    await rejectsWith(resolver.resolve(url), /HTTP 404/);
    for (let i = 0; i < 10; i++) await rejectsWith(resolver.resolve(url), /HTTP 404/);
    await Promise.all(Array.from({ length: 10 }, () => rejectsWith(resolver.resolve(url), /HTTP 404/)));
    clock.advance(FAILURE_TTL - 1);
    await rejectsWith(resolver.resolve(url), /HTTP 404/);
    assert.equal(httpsServer.hits.get(p), 1, 'one fetch for 22 requests');
    assert.equal(await t.db.prisma.client.count({ where: { clientId: url } }), 0, 'nothing stored');

    clock.advance(2);
    await rejectsWith(resolver.resolve(url), /HTTP 404/);
    assert.equal(httpsServer.hits.get(p), 2, 'once the failure is forgotten, one more fetch');
  });

  it('remembers an invalid document as a failure too, and fetches it again once the failure is forgotten', async () => {
    const clock = new ManualClock();
    const p = path('invalid');
    const url = httpsServer.serve(p, documentFor('https://elsewhere.example/client'));
    const resolver = resolverFor(clock);
    await rejectsWith(resolver.resolve(url), /client_id does not match its URL/);
    httpsServer.serve(p); // fixed at once, but the failure is remembered until CIMD_FAILURE_TTL passes
    await rejectsWith(resolver.resolve(url), /client_id does not match its URL/);
    assert.equal(httpsServer.hits.get(p), 1);
    clock.advance(FAILURE_TTL + 1);
    assert.equal((await resolver.resolve(url)).clientId, url);
    assert.equal(httpsServer.hits.get(p), 2);
  });

  it('caps fetches per host: distinct URLs on one host past CIMD_HOST_FETCH_LIMIT get invalid_client and cause no fetch', async () => {
    const clock = new ManualClock();
    const resolver = resolverFor(clock);
    const prefix = path('many/');
    const urls = Array.from({ length: HOST_LIMIT + 6 }, (_, i) =>
      httpsServer.serve(`${prefix}${i}`, undefined, { 'cache-control': 'max-age=600' }),
    );
    const results = await Promise.allSettled(urls.map((u) => resolver.resolve(u)));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, HOST_LIMIT);
    for (const r of results.filter((r) => r.status === 'rejected')) {
      await rejectsWith(Promise.reject(r.reason), /too many fetches from this host; try again later/);
    }
    assert.equal(hitsUnder(prefix), HOST_LIMIT, 'no fetch past the limit');

    // Another host is counted on its own.
    const other = `https://client.test:${httpsServer.port}${path('other-host')}`;
    httpsServer.serve(path('other-host'), documentFor(other));
    assert.equal((await resolver.resolve(other)).clientId, other);

    // A refused URL was not remembered as a failure: the next window fetches it.
    clock.advance(CIMD_HOST_WINDOW);
    const refused = urls[results.findIndex((r) => r.status === 'rejected')]!;
    assert.equal((await resolver.resolve(refused)).clientId, refused);
    assert.equal(hitsUnder(prefix), HOST_LIMIT + 1);
  });

  it('answers /token for a remembered bad client_id with invalid_client, fetching it once (real HTTP)', async () => {
    const server = await startServer(kind, {
      env: {
        CIMD_ALLOW_LOOPBACK: 'true',
        CIMD_FAILURE_TTL: String(FAILURE_TTL),
        CIMD_HOST_FETCH_LIMIT: String(HOST_LIMIT),
      },
      cimd: { ca: tls.cert },
    });
    try {
      const p = path('token-endpoint');
      const url = `${httpsServer.origin}${p}`;
      httpsServer.routes.set(p, (_req, res) => res.writeHead(500).end());
      for (let i = 0; i < 5; i++) {
        const res = await tokenRequest(server, {
          grant_type: 'refresh_token',
          refresh_token: 'x',
          client_id: url,
        });
        assert.equal(res.status, 401);
        assert.equal(res.body.error, 'invalid_client');
        assert.match(String(res.body.error_description), /client metadata document: .*HTTP 500/);
      }
      assert.equal(httpsServer.hits.get(p), 1);
      server.clock.advance(FAILURE_TTL + 1);
      assert.equal(
        (await tokenRequest(server, { grant_type: 'refresh_token', refresh_token: 'x', client_id: url }))
          .status,
        401,
      );
      assert.equal(httpsServer.hits.get(p), 2);
    } finally {
      await server.close();
    }
  });
});
