// The audit trail's store (README: Audit trail): an event commits with its change or not at all, the filters the CLI
// uses, configuration applied at start recorded once per actual change, and AUDIT_RETENTION swept (time injected).
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { applyDeclaredResourceServers } from '../../src/bootstrap.ts';
import { loadConfig } from '../../src/config.ts';
import { sweepAuditEvents } from '../../src/store/audit.ts';
import { sweepOnce } from '../../src/sweeper.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { exchangeCode, obtainCode } from '../helpers/flow.ts';
import { addClient, addResourceServer, addUser, startServer, type TestServer } from '../helpers/server.ts';

const DAY = 86400;

forEachDatabase('the audit trail', (kind) => {
  let server: TestServer;
  before(async () => {
    server = await startServer(kind);
    await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
  });
  after(() => server.close());

  const count = (where: { action?: string; subject?: string } = {}) =>
    server.database.db.prisma.auditEvent.count({ where });

  /** Runs `fn` while a trigger makes every `op` on `table` fail inside its transaction. */
  async function whileRefusing(table: string, op: 'INSERT' | 'UPDATE', fn: () => Promise<unknown>) {
    await server.database.db.withConnection((c) =>
      c.exec(`
        CREATE FUNCTION refuse_in_test() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN RAISE EXCEPTION '${table} refuses ${op} in this test'; END $$;
        CREATE TRIGGER refuse_in_test BEFORE ${op} ON ${table} FOR EACH ROW EXECUTE FUNCTION refuse_in_test();`),
    );
    try {
      await assert.rejects(fn(), new RegExp(`refuses ${op}`));
    } finally {
      await server.database.db.withConnection((c) =>
        c.exec(`DROP TRIGGER refuse_in_test ON ${table}; DROP FUNCTION refuse_in_test();`),
      );
    }
  }

  it('leaves no event of a change that rolls back after its event was written', async () => {
    const client = await addClient(server.stores);
    const email = await addUser(server.stores);
    await exchangeCode(server, client, await obtainCode(server, client, email));
    const grant = await server.database.db.prisma.grant.findFirstOrThrow({ where: { revokedAt: null } });
    const revokedBefore = await count({ action: 'grant_revoked' });
    // The grant_revoked event is written after the grant's row is updated, before its tokens are: they refuse.
    await whileRefusing('access_tokens', 'UPDATE', () =>
      server.stores.grants.revokeGrant(grant.id, 'operator', server.clock.now()),
    );
    assert.equal(await count({ action: 'grant_revoked' }), revokedBefore);
    const still = await server.database.db.prisma.grant.findUniqueOrThrow({ where: { id: grant.id } });
    assert.equal(still.revokedAt, null, 'the change itself rolled back');
    // The sign_in event is written before the session's row, which is refused.
    const user = (await server.stores.users.findByEmail(email))!;
    const signInsBefore = await count({ action: 'sign_in', subject: user.id });
    await whileRefusing('sessions', 'INSERT', () =>
      server.stores.sessions.create(
        user.id,
        server.clock.now(),
        { idleTtl: 60, absoluteTtl: 60 },
        undefined,
        undefined,
        {
          method: 'password',
          address: '127.0.0.1',
        },
      ),
    );
    assert.equal(await count({ action: 'sign_in', subject: user.id }), signInsBefore);
    // And once nothing refuses, the same revocation commits with its one event.
    assert.equal(await server.stores.grants.revokeGrant(grant.id, 'operator', server.clock.now()), true);
    assert.equal(await count({ action: 'grant_revoked' }), revokedBefore + 1);
  });

  it('records configuration applied at start once per change, not on every start', async () => {
    const declared = (secret: string) =>
      loadConfig({
        RESOURCE_SERVERS: JSON.stringify([
          { uri: 'https://declared.example.com', client_id: 'rs-declared', client_secret: secret },
        ]),
      });
    const applied = () => count({ action: 'config_applied', subject: 'https://declared.example.com' });
    await applyDeclaredResourceServers(server.stores, declared('a'.repeat(40)));
    await applyDeclaredResourceServers(server.stores, declared('a'.repeat(40)));
    assert.equal(await applied(), 1, 'a restart with the same declaration changes nothing');
    await applyDeclaredResourceServers(server.stores, declared('b'.repeat(40)));
    assert.equal(await applied(), 2, 'a new secret is a change');
  });

  it('filters by user, client and time, newest last; AUDIT_RETENTION sweeps older events', async () => {
    const t0 = server.clock.now();
    const at = (days: number) => new Date(t0.getTime() + days * DAY * 1000);
    const subject = '00000000-0000-4000-8000-00000000a0d1';
    for (const [days, clientId] of [
      [-100, 'old-client'],
      [-10, 'mid-client'],
      [-1, 'mid-client'],
    ] as const) {
      await server.stores.audit.record({
        action: 'sign_in',
        actor: `user:${subject}`,
        subject,
        clientId,
        at: at(days),
      });
    }
    const ours = await server.stores.audit.list({ subject, limit: 100 });
    assert.deepEqual(
      ours.map((e) => e.occurredAt.getTime()),
      [at(-100), at(-10), at(-1)].map((d) => d.getTime()),
    );
    assert.equal((await server.stores.audit.list({ subject, since: at(-5), limit: 100 })).length, 1);
    assert.equal((await server.stores.audit.list({ clientId: 'mid-client', limit: 100 })).length, 2);
    assert.equal(
      (await server.stores.audit.list({ subject, limit: 1 }))[0]!.occurredAt.getTime(),
      at(-1).getTime(),
    );

    // The sweeper (default AUDIT_RETENTION, 90 days) removes the 100-day-old event only.
    assert.equal(server.config.auditRetention, 90 * DAY);
    const logged: unknown[] = [];
    const logger = { info: (o: unknown) => logged.push(o), warn: (o: unknown) => logged.push(o) };
    await sweepOnce(server.database.db, server.config, server.clock, logger);
    assert.equal(await count({ subject }), 2);
    assert.match(JSON.stringify(logged), /"auditEvents":1/);
    // A shorter retention, later: the rest go.
    server.clock.advance(2 * DAY);
    assert.equal(await sweepAuditEvents(server.database.db.prisma, server.clock.now(), 3 * DAY), 1);
    assert.equal(await count({ subject }), 1);
  });
});
