// RESOURCE_SERVERS: resource servers declared in configuration are created or updated at start.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { applyDeclaredResourceServers } from '../src/bootstrap.ts';
import { loadConfig } from '../src/config.ts';
import { verifySecret } from '../src/lib/crypto.ts';
import { createStores } from '../src/store/index.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from './helpers/db.ts';

forEachDatabase('declared resource servers', (kind) => {
  let t: TestDatabase;
  before(async () => {
    t = await migratedDatabase(kind);
  });
  after(() => t.cleanup());

  it('creates them normalised, stores only the secret hash, and updates them on the next start', async () => {
    const stores = createStores(t.db);
    const secret = 'a'.repeat(40);
    const env = (s: string) => ({
      RESOURCE_SERVERS: JSON.stringify([
        { uri: 'HTTPS://MCP.Example.com/', client_id: 'example-mcp', client_secret: s, name: 'Example' },
      ]),
    });
    assert.deepEqual(await applyDeclaredResourceServers(stores, loadConfig(env(secret))), [
      'https://mcp.example.com',
    ]);
    const rs = await stores.resourceServers.findByClientId('example-mcp');
    assert.equal(rs?.uri, 'https://mcp.example.com');
    assert.ok(rs && verifySecret(secret, rs.secretHash) && rs.secretHash !== secret);
    await applyDeclaredResourceServers(stores, loadConfig(env('b'.repeat(40))));
    const rotated = await stores.resourceServers.findByClientId('example-mcp');
    assert.ok(rotated && verifySecret('b'.repeat(40), rotated.secretHash));
    assert.equal((await stores.resourceServers.list()).length, 1);
  });

  it('refuses a client_id that already belongs to another resource server, changing nothing', async () => {
    const stores = createStores(t.db);
    const config = loadConfig({
      RESOURCE_SERVERS: JSON.stringify([
        { uri: 'https://other.example.com/mcp', client_id: 'example-mcp', client_secret: 'c'.repeat(40) },
      ]),
    });
    await assert.rejects(applyDeclaredResourceServers(stores, config), /already belongs/);
    assert.equal(await stores.resourceServers.findByUri('https://other.example.com/mcp'), null);
  });
});
