// The account store (issue 13): a password link is single use under concurrency and only its hash is stored;
// disabling a person ends their sessions, grants, tokens and remembered approvals in one step; a password change
// keeps the session that made it and ends the rest.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { hashPassword } from '../../src/lib/crypto.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { exchangeCode, obtainCode } from '../helpers/flow.ts';
import { addClient, addResourceServer, addUser, startServer, type TestServer } from '../helpers/server.ts';

forEachDatabase('account store', (kind) => {
  let server: TestServer;
  before(async () => {
    server = await startServer(kind);
    await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
  });
  after(() => server.close());

  it('lets exactly one of several concurrent uses of a link set the password', async () => {
    const user = await server.stores.users.create({ email: `race-${kind}@example.com` });
    const { token } = await server.stores.accounts.createPasswordLink(
      user.id,
      'invite',
      600,
      server.clock.now(),
    );
    const hash = await hashPassword('the chosen password');
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        server.stores.accounts.usePasswordLink(token, hash, server.clock.now()),
      ),
    );
    assert.equal(results.filter((r) => r !== null).length, 1);
    assert.deepEqual(await server.stores.accounts.checkPasswordLink(token, server.clock.now()), {
      kind: 'invalid',
    });
  });

  it('disables a person with their sessions, grants, tokens and approvals ended in one step', async () => {
    const prisma = server.database.db.prisma;
    const client = await addClient(server.stores);
    const email = await addUser(server.stores);
    await exchangeCode(server, client, await obtainCode(server, client, email));
    const user = (await server.stores.users.findByEmail(email))!;
    assert.equal(await prisma.consent.count({ where: { userId: user.id } }), 1);

    assert.equal((await server.stores.accounts.disable(email, server.clock.now()))?.disabled, true);
    assert.equal(await prisma.session.count({ where: { userId: user.id, revokedAt: null } }), 0);
    assert.equal(await prisma.grant.count({ where: { userId: user.id, revokedAt: null } }), 0);
    assert.equal(
      await prisma.accessToken.count({ where: { grant: { userId: user.id }, revokedAt: null } }),
      0,
    );
    assert.equal(
      await prisma.refreshToken.count({ where: { grant: { userId: user.id }, revokedAt: null } }),
      0,
    );
    assert.equal(await prisma.consent.count({ where: { userId: user.id } }), 0);
    assert.equal(await server.stores.accounts.disable('nobody@example.com', server.clock.now()), null);
  });

  it('changes a password keeping only the session that changed it', async () => {
    const email = await addUser(server.stores);
    const user = (await server.stores.users.findByEmail(email))!;
    const life = { idleTtl: 3600, absoluteTtl: 86400 };
    const keep = await server.stores.sessions.create(user.id, server.clock.now(), life);
    const other = await server.stores.sessions.create(user.id, server.clock.now(), life);
    const kept = (await server.stores.sessions.findLive(keep, server.clock.now(), life))!;
    await server.stores.accounts.changePassword(
      user.id,
      await hashPassword('another one'),
      kept.id,
      server.clock.now(),
    );
    assert.ok(await server.stores.sessions.findLive(keep, server.clock.now(), life));
    assert.equal(await server.stores.sessions.findLive(other, server.clock.now(), life), null);
  });
});
