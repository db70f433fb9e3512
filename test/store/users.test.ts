import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { EmailTakenError, userStore } from '../../src/store/users.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';

forEachDatabase('user store', (kind) => {
  let t: TestDatabase;
  before(async () => {
    t = await migratedDatabase(kind);
  });
  after(() => t.cleanup());

  it('stores emails lower-cased and an argon2id hash, never the password', async () => {
    const users = userStore(t.db.prisma);
    const u = await users.create({
      email: 'Ada@Example.COM',
      name: 'Ada',
      password: 'correct horse battery',
    });
    assert.equal(u.email, 'ada@example.com');
    assert.match(u.passwordHash ?? '', /^\$argon2id\$/);
    assert.ok(!(u.passwordHash ?? '').includes('correct horse'));
    assert.equal((await users.findByEmail('ADA@example.com'))?.id, u.id);
  });

  it('refuses a second user with the same email and changes nothing', async () => {
    const users = userStore(t.db.prisma);
    await assert.rejects(
      users.create({ email: 'ada@example.com', password: 'another one here' }),
      EmailTakenError,
    );
    const all = await users.list();
    assert.equal(all.filter((u) => u.email === 'ada@example.com').length, 1);
    assert.equal(all.find((u) => u.email === 'ada@example.com')?.name, 'Ada');
  });
});
