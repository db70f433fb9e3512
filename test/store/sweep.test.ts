// The sweep removes what nothing can use any more, and keeps what still matters.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { hashSecret } from '../../src/lib/crypto.ts';
import { sweepExpired } from '../../src/store/sweep.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { exchangeCode, obtainCode, refreshToken } from '../helpers/flow.ts';
import { addClient, addResourceServer, addUser, startServer, type TestServer } from '../helpers/server.ts';

forEachDatabase('sweeping expired rows', (kind) => {
  let server: TestServer;
  before(async () => {
    server = await startServer(kind, { env: { UNUSED_CLIENT_TTL: '86400' } });
    await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
  });
  after(() => server.close());

  it('keeps live tokens, rotated refresh tokens (for replay detection) and recently used clients', async () => {
    const client = await addClient(server.stores);
    const email = await addUser(server.stores);
    const t = (await exchangeCode(server, client, await obtainCode(server, client, email))).body;
    await refreshToken(server, client, String(t.refresh_token));
    const r = await sweepExpired(server.database.db.prisma, server.clock.now(), 86400);
    assert.equal(r.accessTokens + r.refreshTokens + r.grants + r.clients, 0);
    assert.equal(
      (await server.database.db.prisma.refreshToken.count({ where: { rotatedAt: { not: null } } })) >= 1,
      true,
    );
  });

  it('removes the answer kept for a refresh once REFRESH_REUSE_WINDOW has passed, and keeps the spent token', async () => {
    const prisma = server.database.db.prisma;
    const client = await addClient(server.stores);
    const email = await addUser(server.stores);
    const t = (await exchangeCode(server, client, await obtainCode(server, client, email))).body;
    assert.equal((await refreshToken(server, client, String(t.refresh_token))).status, 200);
    const spent = await prisma.refreshToken.findUniqueOrThrow({
      where: { tokenHash: hashSecret(String(t.refresh_token)) },
    });
    assert.equal((await sweepExpired(prisma, server.clock.now(), 86400)).refreshReplays, 0);
    assert.equal(await prisma.refreshReplay.count({ where: { id: spent.id } }), 1, 'kept inside the window');
    server.clock.advance(server.config.refreshReuseWindow + 1);
    assert.ok((await sweepExpired(prisma, server.clock.now(), 86400)).refreshReplays >= 1);
    assert.equal(await prisma.refreshReplay.count({ where: { id: spent.id } }), 0);
    assert.ok(await prisma.refreshToken.findUnique({ where: { id: spent.id } }), 'the spent token stays');
  });

  it('removes expired codes, tokens, sessions, empty grants and unused dynamic clients once their time has passed', async () => {
    const prisma = server.database.db.prisma;
    const used = await addClient(server.stores);
    const email = await addUser(server.stores);
    await exchangeCode(server, used, await obtainCode(server, used, email));
    const idle = await server.stores.clients.create({
      clientId: 'dcr-never-used',
      kind: 'DYNAMIC',
      name: 'Never used',
      redirectUris: ['https://x.example.com/cb'],
      grantTypes: ['authorization_code'],
      responseTypes: ['code'],
      tokenEndpointAuthMethod: 'none',
    });
    await prisma.client.update({ where: { id: idle.id }, data: { createdAt: server.clock.now() } });
    const invited = await server.stores.users.create({ email: 'swept-link@example.com' });
    await server.stores.accounts.createPasswordLink(invited.id, 'invite', 3600, server.clock.now());
    server.clock.advance(2592000 + 2 * 86400);
    const r = await sweepExpired(prisma, server.clock.now(), 86400);
    assert.ok(r.accessTokens >= 1);
    assert.ok(r.refreshTokens >= 1);
    assert.ok(r.authorizationCodes >= 1);
    assert.ok(r.grants >= 1);
    assert.ok(r.sessions >= 1);
    assert.ok(r.clients >= 1);
    assert.ok(r.passwordLinks >= 1);
    assert.equal(await prisma.passwordToken.count(), 0);
    assert.equal(await prisma.accessToken.count(), 0);
    assert.equal(await prisma.refreshToken.count(), 0);
    assert.equal(await prisma.grant.count(), 0);
    assert.equal(await server.stores.clients.findByClientId('dcr-never-used'), null);
    assert.ok(await server.stores.clients.findByClientId(used.clientId), 'operator clients are never swept');
    const again = await sweepExpired(prisma, server.clock.now(), 86400);
    assert.deepEqual(
      Object.values(again).reduce((a, b) => a + b, 0),
      0,
      'a second sweep finds nothing',
    );
  });
});
