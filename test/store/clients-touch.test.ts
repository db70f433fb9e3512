// A client's last_used_at is written only when the stored time is a minute old or more (one hot row otherwise).
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { clientStore, TOUCH_INTERVAL_SECONDS } from '../../src/store/clients.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';

forEachDatabase('client last use', (kind) => {
  let t: TestDatabase;
  before(async () => {
    t = await migratedDatabase(kind);
  });
  after(() => t.cleanup());

  it('writes a first use, skips uses within the minute, and writes again once it is stale', async () => {
    const clients = clientStore(t.db.prisma);
    const c = await clients.create({
      clientId: 'touched',
      kind: 'DYNAMIC',
      name: 'App',
      redirectUris: ['https://app.example.com/cb'],
      grantTypes: ['authorization_code'],
      responseTypes: ['code'],
      tokenEndpointAuthMethod: 'none',
    });
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
});
