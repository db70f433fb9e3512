// The sweeper's upstream part (spec federation §5.2, §11 S5): expired flows and unreferenced logins go; logins that a
// live session or an unrevoked grant references stay.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { addSeconds } from '../../src/lib/clock.ts';
import { sweepExpired } from '../../src/store/sweep.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { randomId } from '../helpers/federation.ts';
import { addClient, addResourceServer, startServer, type TestServer } from '../helpers/server.ts';

forEachDatabase('upstream sweep', (kind) => {
  let server: TestServer;
  before(async () => {
    server = await startServer(kind);
  });
  after(() => server.close());

  test('S5: deletes expired flows and unreferenced logins, keeps those a live session or grant uses', async () => {
    const prisma = server.database.db.prisma;
    const now = server.clock.now();
    const ago = (s: number) => addSeconds(now, -s);
    const DAY = 86400;

    const flow = (expiresAt: Date) =>
      prisma.upstreamFlow.create({
        data: {
          stateHash: randomId() + randomId(),
          provider: 'corp',
          browserHash: 'b',
          returnTo: '/',
          createdAt: addSeconds(expiresAt, -600),
          expiresAt,
        },
      });
    const oldFlow = await flow(ago(2 * 3600));
    const recentFlow = await flow(ago(1800));
    const liveFlow = await flow(addSeconds(now, 300));

    const user = await prisma.user.create({ data: { email: `s5-${randomId()}@example.com` } });
    const identity = await prisma.upstreamIdentity.create({
      data: { userId: user.id, provider: 'corp', subject: `s-${randomId()}` },
    });
    const login = (createdAt: Date, revokedAt: Date | null = null) =>
      prisma.upstreamLogin.create({
        data: {
          id: randomUUID(),
          identityId: identity.id,
          provider: 'corp',
          scopes: [],
          claims: {},
          accessTokenEnc: 'v1.k1.x.y',
          keyId: 'k1',
          createdAt,
          refreshedAt: createdAt,
          revokedAt,
        },
      });
    const revokedLong = await login(ago(3 * DAY), ago(2 * DAY));
    const unreferenced = await login(ago(2 * DAY));
    const withSession = await login(ago(2 * DAY));
    const withGrant = await login(ago(2 * DAY));
    const young = await login(ago(60));
    const withDeadSession = await login(ago(2 * DAY));

    const session = (upstreamLoginId: string, revokedAt: Date | null) =>
      prisma.session.create({
        data: {
          tokenHash: randomId() + randomId(),
          userId: user.id,
          upstreamLoginId,
          idleExpiresAt: addSeconds(now, 3600),
          expiresAt: addSeconds(now, DAY),
          revokedAt,
        },
      });
    await session(withSession.id, null);
    await session(withDeadSession.id, ago(10));
    const rs = await addResourceServer(server.stores, `${server.url}/s5-${randomId()}`);
    const client = await addClient(server.stores);
    const clientRow = await server.stores.clients.findByClientId(client.clientId);
    const rsRow = await server.stores.resourceServers.findByUri(rs.uri);
    await prisma.grant.create({
      data: {
        userId: user.id,
        clientId: clientRow!.id,
        resourceServerId: rsRow!.id,
        scopes: ['mcp'],
        upstreamLoginId: withGrant.id,
        createdAt: now,
      },
    });

    const r = await sweepExpired(prisma, now, 30 * DAY);
    assert.equal(r.upstreamFlows, 1);
    assert.equal(r.upstreamLogins, 3);
    const flows = new Set((await prisma.upstreamFlow.findMany()).map((f) => f.id));
    assert.deepEqual(
      [oldFlow.id, recentFlow.id, liveFlow.id].map((id) => flows.has(id)),
      [false, true, true],
    );
    const logins = new Set((await prisma.upstreamLogin.findMany()).map((l) => l.id));
    assert.deepEqual(
      [revokedLong, unreferenced, withSession, withGrant, young, withDeadSession].map((l) =>
        logins.has(l.id),
      ),
      [false, false, true, true, true, false],
    );
  });
});
