// The lookups /token and /introspect cache (src/oauth/clients.ts, src/oauth/cached-lookups.ts): requests that miss
// together share one read of the row, and a change notification still makes the next request read again.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { ManualClock } from '../../src/lib/clock.ts';
import { hashSecret } from '../../src/lib/crypto.ts';
import { cachedResourceServers } from '../../src/oauth/cached-lookups.ts';
import type { ChangeSource } from '../../src/oauth/change-cache.ts';
import { createClientResolver } from '../../src/oauth/clients.ts';
import { OAuthError } from '../../src/oauth/errors.ts';
import { createStores } from '../../src/store/index.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';

/** A change feed that is always up; notify() is a change notification. */
function changeFeed(): { changes: ChangeSource; notify(): void } {
  const subscribers: ((listening: boolean) => void)[] = [];
  return {
    changes: { listening: true, fresh: () => true, subscribe: (fn) => void subscribers.push(fn) },
    notify: () => {
      for (const fn of subscribers) fn(true);
    },
  };
}

forEachDatabase('client cache', (kind) => {
  let t: TestDatabase;
  before(async () => {
    t = await migratedDatabase(kind);
  });
  after(() => t.cleanup());

  it('sends one read for the requests that miss together, and reads again after a change', async () => {
    const stores = createStores(t.db);
    await stores.clients.create({
      clientId: 'shared',
      kind: 'OPERATOR',
      name: 'App',
      redirectUris: ['https://app.example.com/cb'],
      grantTypes: ['authorization_code'],
      responseTypes: ['code'],
      tokenEndpointAuthMethod: 'none',
    });
    // The real store, its reads counted.
    const reads: string[] = [];
    const findByClientId = stores.clients.findByClientId;
    stores.clients.findByClientId = (id) => {
      reads.push(id);
      return findByClientId(id);
    };
    const { changes, notify } = changeFeed();
    const clock = new ManualClock();
    const resolver = createClientResolver(stores, { clock, changes });

    const first = await Promise.all(Array.from({ length: 16 }, () => resolver.resolve('shared')));
    assert.deepEqual(reads, ['shared'], '16 requests at once, one read');
    assert.ok(first.every((c) => c.clientId === 'shared'));
    await resolver.resolve('shared');
    assert.equal(reads.length, 1, 'then served from the cache');

    // The entry expires (a minute): the requests under way then share one read again.
    clock.advance(61);
    await Promise.all(Array.from({ length: 16 }, () => resolver.resolve('shared')));
    assert.equal(reads.length, 2);

    // A change notification: the next request reads again.
    notify();
    await resolver.resolve('shared');
    assert.equal(reads.length, 3);

    // An unknown client: one read for the requests at once, each refused, and nothing kept.
    const unknown = await Promise.allSettled(Array.from({ length: 8 }, () => resolver.resolve('nobody')));
    assert.ok(unknown.every((r) => r.status === 'rejected' && r.reason instanceof OAuthError));
    assert.equal(reads.filter((id) => id === 'nobody').length, 1);
    await assert.rejects(resolver.resolve('nobody'), OAuthError);
    assert.equal(reads.filter((id) => id === 'nobody').length, 2, 'an unknown client is read again');
  });

  it('sends one read of a resource server for the callers that miss together, and reads again after a change', async () => {
    const stores = createStores(t.db);
    await stores.resourceServers.create({
      uri: 'https://mcp.example.com/mcp',
      name: 'MCP',
      clientId: 'rs-shared',
      secretHash: hashSecret('rs-secret'),
    });
    const reads: string[] = [];
    const { changes, notify } = changeFeed();
    const clock = new ManualClock();
    const lookups = cachedResourceServers(
      {
        findByClientId: (id) => {
          reads.push(id);
          return stores.resourceServers.findByClientId(id);
        },
      },
      changes,
      clock,
    );
    const found = await Promise.all(Array.from({ length: 16 }, () => lookups.findByClientId('rs-shared')));
    assert.ok(found.every((rs) => rs?.uri === 'https://mcp.example.com/mcp'));
    assert.equal(reads.length, 1, '16 callers at once, one read');
    clock.advance(61);
    await Promise.all(Array.from({ length: 16 }, () => lookups.findByClientId('rs-shared')));
    assert.equal(reads.length, 2, 'after the entry expires, one read again');

    // Deleted while a read is under way: the read that raced the change is neither kept nor shared.
    clock.advance(61);
    const raced = lookups.findByClientId('rs-shared');
    assert.equal(reads.length, 3);
    await stores.resourceServers.delete('https://mcp.example.com/mcp');
    notify();
    assert.equal(
      await lookups.findByClientId('rs-shared'),
      null,
      'the caller after the change sees the deletion',
    );
    assert.equal(reads.length, 4, 'it read for itself');
    await raced;
    assert.equal(
      await lookups.findByClientId('rs-shared'),
      null,
      'and what the raced read found is not kept',
    );
  });
});
