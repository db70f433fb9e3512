// The hand-written migrations must build exactly the database prisma/schema.prisma describes: tables, columns,
// types, nullability, defaults, enums, primary keys, indexes and foreign keys, both ways.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, it } from 'node:test';
import type { SqlConnection } from '../../src/db/database.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';
import { expectedSchemaFromFile, findSchemaDrift, SCHEMA_PATH } from '../helpers/schema-drift.ts';

/** Runs `fn` inside a transaction that is always rolled back (Postgres DDL is transactional). */
async function inRolledBackTransaction<T>(c: SqlConnection, fn: () => Promise<T>): Promise<T> {
  await c.exec('BEGIN');
  try {
    return await fn();
  } finally {
    await c.exec('ROLLBACK');
  }
}

forEachDatabase('schema drift', (kind) => {
  let t: TestDatabase;
  before(async () => {
    t = await migratedDatabase(kind);
  });
  after(() => t.cleanup());

  it('finds no difference between the migrated database and schema.prisma', async () => {
    const expected = await expectedSchemaFromFile();
    // Guards against a vacuous pass: every model of schema.prisma is an expected table.
    const models = (await readFile(SCHEMA_PATH, 'utf8')).match(/^model \w+ \{/gm) ?? [];
    assert.ok(models.length >= 12);
    assert.equal([...expected.keys()].filter((k) => k.startsWith('table ')).length, models.length);
    assert.deepEqual(await t.db.withConnection((c) => findSchemaDrift(c)), []);
  });

  it('reports exactly what was changed behind the schema’s back: missing, unexpected and altered objects', async () => {
    const drift = await t.db.withConnection((c) =>
      inRolledBackTransaction(c, async () => {
        await c.exec(`
          DROP INDEX "sessions_user_id_idx";
          ALTER TABLE "users" ALTER COLUMN "email" DROP NOT NULL;
          ALTER TABLE "users" ADD COLUMN "stray" TEXT;
          ALTER TABLE "clients" ALTER COLUMN "token_endpoint_auth_method" SET DEFAULT 'client_secret_basic';
          ALTER TABLE "rate_limits" ALTER COLUMN "hits" TYPE BIGINT;
          ALTER TABLE "access_tokens" DROP CONSTRAINT "access_tokens_grant_id_fkey",
            ADD CONSTRAINT "access_tokens_grant_id_fkey" FOREIGN KEY ("grant_id")
            REFERENCES "grants"("id") ON DELETE SET NULL ON UPDATE CASCADE;
          ALTER TABLE "sessions" DROP CONSTRAINT "sessions_user_id_fkey";
          DROP INDEX "clients_kind_last_used_at_idx";
          CREATE INDEX "clients_kind_last_used_at_idx" ON "clients"("last_used_at", "kind");
          ALTER TYPE "client_kind" ADD VALUE 'EXTRA';
          CREATE TABLE "stray_table" ("id" INTEGER);
        `);
        return findSchemaDrift(c);
      }),
    );
    assert.deepEqual(drift, [
      'column clients.token_endpoint_auth_method: expected text NOT NULL DEFAULT ' +
        "'none'::text, found text NOT NULL DEFAULT 'client_secret_basic'::text",
      'column rate_limits.hits: expected integer NOT NULL, found bigint NOT NULL',
      'column users.email: expected text NOT NULL, found text NULL',
      "enum client_kind: expected 'DYNAMIC', 'CIMD', 'OPERATOR', found 'DYNAMIC', 'CIMD', 'OPERATOR', 'EXTRA'",
      'foreign key access_tokens_grant_id_fkey: expected access_tokens (grant_id) REFERENCES ' +
        'grants (id) ON DELETE CASCADE ON UPDATE CASCADE, found access_tokens (grant_id) ' +
        'REFERENCES grants (id) ON DELETE SET NULL ON UPDATE CASCADE',
      'index clients_kind_last_used_at_idx: expected INDEX ON clients USING btree (kind, last_used_at), ' +
        'found INDEX ON clients USING btree (last_used_at, kind)',
      'missing foreign key sessions_user_id_fkey: sessions (user_id) REFERENCES users (id) ' +
        'ON DELETE CASCADE ON UPDATE CASCADE',
      'missing index sessions_user_id_idx: INDEX ON sessions USING btree (user_id)',
      'unexpected column stray_table.id: integer NULL',
      'unexpected column users.stray: text NULL',
      'unexpected table stray_table: table',
    ]);
    // The mutations were rolled back, so the database matches again.
    assert.deepEqual(await t.db.withConnection((c) => findSchemaDrift(c)), []);
  });

  it('leaves room on token pages, so the one update each row gets stays on its page (schema.prisma cannot say it)', async () => {
    const rows = await t.db.withConnection((c) =>
      c.query<{ relname: string; reloptions: string[] | null }>(
        `SELECT relname, reloptions FROM pg_class
         WHERE relname IN ('authorization_codes', 'refresh_tokens', 'access_tokens') AND relkind = 'r'
         ORDER BY relname`,
      ),
    );
    assert.deepEqual(
      rows.map((r) => [r.relname, r.reloptions]),
      [
        ['access_tokens', ['fillfactor=90']],
        ['authorization_codes', ['fillfactor=50']],
        ['refresh_tokens', ['fillfactor=70']],
      ],
    );
  });

  it('reports a schema.prisma change that no migration carries', async () => {
    const schema = await readFile(SCHEMA_PATH, 'utf8');
    let changed = schema;
    for (const [from, to] of [
      ['  name         String?\n', '  name         String?\n  nickname     String?\n'],
      ['  hits    Int\n', '  hits    BigInt\n'],
      ['  @@index([kind, lastUsedAt])\n', '  @@index([kind, lastUsedAt])\n  @@index([name])\n'],
    ] as const) {
      assert.ok(changed.includes(from), `schema.prisma still contains ${JSON.stringify(from)}`);
      changed = changed.replace(from, to);
    }
    assert.deepEqual(await t.db.withConnection((c) => findSchemaDrift(c, changed)), [
      'column rate_limits.hits: expected bigint NOT NULL, found integer NOT NULL',
      'missing column users.nickname: text NULL',
      'missing index clients_name_idx: INDEX ON clients USING btree (name)',
    ]);
  });
});
