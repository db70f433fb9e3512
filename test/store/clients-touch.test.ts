// A client's last_used_at is written only when the stored time is a minute old or more (one hot row otherwise).
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { FastifyBaseLogger } from 'fastify';
import { recordClientUse } from '../../src/oauth/client-registration.ts';
import { clientStore, type NewClient, TOUCH_INTERVAL_SECONDS } from '../../src/store/clients.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';

const dynamicClient = (clientId: string): NewClient => ({
  clientId,
  kind: 'DYNAMIC',
  name: 'App',
  redirectUris: ['https://app.example.com/cb'],
  grantTypes: ['authorization_code'],
  responseTypes: ['code'],
  tokenEndpointAuthMethod: 'none',
});

forEachDatabase('client last use', (kind) => {
  let t: TestDatabase;
  before(async () => {
    t = await migratedDatabase(kind);
  });
  after(() => t.cleanup());

  it('writes a first use, skips uses within the minute, and writes again once it is stale', async () => {
    const clients = clientStore(t.db.prisma);
    const c = await clients.create(dynamicClient('touched'));
    const t0 = new Date('2026-01-01T00:00:00Z');
    const at = (s: number) => new Date(t0.getTime() + s * 1000);
    const stored = async () => (await clients.findByClientId('touched'))?.lastUsedAt?.getTime();

    assert.equal(await clients.touch(c.id, t0), true);
    assert.equal(await stored(), t0.getTime());
    assert.equal(await clients.touch(c.id, at(1)), false, 'a second use a second later writes nothing');
    assert.equal(await clients.touch(c.id, at(TOUCH_INTERVAL_SECONDS)), false, 'nor exactly a minute later');
    assert.equal(await stored(), t0.getTime());
    assert.equal(await clients.touch(c.id, at(TOUCH_INTERVAL_SECONDS + 1)), true, 'past the minute: written');
    assert.equal(await stored(), at(TOUCH_INTERVAL_SECONDS + 1).getTime());
  });

  it('sends one write for the requests under way when a use is due, and tries again after a failed one', async () => {
    const clients = clientStore(t.db.prisma);
    const created = await clients.create(dynamicClient('busy'));
    // The real store, its writes counted. Half the requests hold the same row, as from the client cache; the others
    // each a row of their own, as when the cache entry had just expired and each request read the row again.
    let writes = 0;
    let failNext = false;
    const store = {
      touch: async (id: string, at: Date) => {
        writes++;
        if (failNext) {
          failNext = false;
          throw new Error('connection lost');
        }
        return clients.touch(id, at);
      },
    };
    const warned: unknown[] = [];
    const log = { warn: (o: unknown) => warned.push(o) } as unknown as FastifyBaseLogger;
    const row = (await clients.findByClientId('busy'))!;
    const t0 = new Date('2026-01-01T00:00:00Z');
    const at = (s: number) => new Date(t0.getTime() + s * 1000);
    const stored = async () => (await clients.findByClientId('busy'))?.lastUsedAt?.getTime();

    const rowFor = (i: number) => (i % 2 === 0 ? row : { ...row });
    await Promise.all(Array.from({ length: 32 }, (_, i) => recordClientUse(store, rowFor(i), t0, log)));
    assert.equal(writes, 1, '32 requests at once, one write');
    assert.equal(await stored(), t0.getTime());

    // Once the minute is past, a failed write is not taken as recorded: the next request writes.
    const later = at(TOUCH_INTERVAL_SECONDS + 1);
    failNext = true;
    await Promise.all(Array.from({ length: 8 }, (_, i) => recordClientUse(store, rowFor(i), later, log)));
    assert.equal(writes, 2, 'one attempt, which failed');
    assert.equal(warned.length, 1);
    assert.equal(row.lastUsedAt, null, 'the row, which the client cache may share, is never changed');
    assert.equal(await stored(), t0.getTime());
    await recordClientUse(store, { ...row }, at(TOUCH_INTERVAL_SECONDS + 2), log);
    assert.equal(writes, 3);
    // A row read before that write, used a second later: this process wrote the use, so nothing is sent.
    await recordClientUse(store, { ...row, lastUsedAt: t0 }, at(TOUCH_INTERVAL_SECONDS + 3), log);
    assert.equal(writes, 3);
    assert.equal(await stored(), at(TOUCH_INTERVAL_SECONDS + 2).getTime());
    assert.equal(created.id, row.id);
  });
});
