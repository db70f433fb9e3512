// The password method on its own, against each database: what `finish` reports for each attempt, with the
// argon2id check and the throttle counters it runs (README "Security": no answer reveals whether an email exists).
import assert from 'node:assert/strict';
import { after, before, beforeEach, it } from 'node:test';
import { ManualClock } from '../../src/lib/clock.ts';
import { verifyPassword } from '../../src/lib/crypto.ts';
import type { SignInInput } from '../../src/signin/index.ts';
import { passwordSignIn } from '../../src/signin/password.ts';
import { createStores, type Stores } from '../../src/store/index.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';
import { addUser, TEST_PASSWORD } from '../helpers/server.ts';

const silent = { info() {}, warn() {}, error() {} };

function input(fields: Record<string, string>, ip = '192.0.2.1'): SignInInput {
  return { param: (name) => fields[name], ip, browserSecret: undefined, returnTo: '/', log: silent };
}

forEachDatabase('password sign-in method', (kind) => {
  let database: TestDatabase;
  let stores: Stores;
  const clock = new ManualClock();
  /** The hash each argon2id verification ran against (undefined: the dummy hash for an unknown email). */
  const verified: (string | null | undefined)[] = [];

  const method = () =>
    passwordSignIn({
      users: stores.users,
      rateLimits: stores.rateLimits,
      clock,
      limits: { perAccount: 3, perAddress: 8, windowSeconds: 900 },
      verifyPassword: (password, hash) => {
        verified.push(hash);
        return verifyPassword(password, hash);
      },
    });

  before(async () => {
    database = await migratedDatabase(kind);
    stores = createStores(database.db);
  });
  after(() => database.cleanup());
  beforeEach(async () => {
    verified.length = 0;
    await database.db.prisma.rateLimit.deleteMany({});
  });

  it('signs in with the right password, whatever the case and spaces of the email', async () => {
    const email = await addUser(stores);
    const user = await stores.users.findByEmail(email);
    const outcome = await method().finish(
      input({ email: `  ${email.toUpperCase()} `, password: TEST_PASSWORD }),
    );
    assert.deepEqual(outcome, { kind: 'signed_in', userId: user!.id });
  });

  it('reports invalid for a wrong password (naming the account only for the audit trail)', async () => {
    const email = await addUser(stores);
    const user = await stores.users.findByEmail(email);
    assert.deepEqual(await method().finish(input({ email, password: 'not the password' })), {
      kind: 'invalid',
      userId: user!.id,
    });
  });

  it('reports invalid for an unknown email after the same argon2id verification and the same counters', async () => {
    const email = await addUser(stores);
    const hash = (await stores.users.findByEmail(email))!.passwordHash;
    const wrong = await method().finish(input({ email, password: 'not the password' }));
    const unknown = await method().finish(
      input({ email: 'nobody@example.com', password: 'not the password' }),
    );
    // The same answer: only the audit trail's account id (README: Audit trail) differs, and no page shows it.
    const { userId, ...answer } = wrong as typeof wrong & { userId?: string };
    assert.ok(userId);
    assert.deepEqual(unknown, answer);
    assert.deepEqual(
      verified,
      [hash, undefined],
      'one verification each: the stored hash, then the dummy one',
    );
    const counters = await database.db.prisma.rateLimit.findMany({ orderBy: { key: 'asc' } });
    assert.equal(counters.filter((c) => c.key.startsWith('login-account:')).length, 2);
    assert.deepEqual(
      counters.filter((c) => c.key.startsWith('login-address:')).map((c) => c.hits),
      [2],
    );
  });

  it('reports disabled only to the right password, and invalid to a wrong one', async () => {
    const email = await addUser(stores);
    await stores.users.setDisabled(email, true);
    const userId = (await stores.users.findByEmail(email))!.id; // for the audit trail only
    assert.deepEqual(await method().finish(input({ email, password: TEST_PASSWORD })), {
      kind: 'disabled',
      userId,
    });
    assert.deepEqual(await method().finish(input({ email, password: 'not the password' })), {
      kind: 'invalid',
      userId,
    });
  });

  it('reports incomplete without an email or a password, and counts nothing', async () => {
    const attempts: Record<string, string>[] = [
      { email: 'a@example.com' },
      { password: TEST_PASSWORD },
      { email: ' ', password: 'x' },
    ];
    for (const fields of attempts) {
      assert.deepEqual(await method().finish(input(fields)), { kind: 'incomplete' });
    }
    assert.equal(await database.db.prisma.rateLimit.count(), 0);
    assert.deepEqual(verified, []);
  });

  it('throttles an account after the limit, even with the right password, until the window ends', async () => {
    const email = await addUser(stores);
    for (let i = 0; i < 3; i++) {
      assert.equal((await method().finish(input({ email, password: 'wrong' }))).kind, 'invalid');
    }
    const blocked = await method().finish(input({ email, password: TEST_PASSWORD }));
    assert.equal(blocked.kind, 'throttled');
    assert.ok(blocked.kind === 'throttled' && blocked.limit === 'account');
    assert.equal(
      blocked.until.getTime(),
      clock.now().getTime() + 900_000,
      'the window started at the first try',
    );
    assert.equal(verified.length, 3, 'a throttled attempt runs no verification');
    clock.advance(901);
    assert.equal((await method().finish(input({ email, password: TEST_PASSWORD }))).kind, 'signed_in');
  });

  it('throttles an address across accounts, and a success resets only the account counter', async () => {
    const email = await addUser(stores);
    for (let i = 0; i < 2; i++) await method().finish(input({ email, password: 'wrong' }, '192.0.2.9'));
    assert.equal(
      (await method().finish(input({ email, password: TEST_PASSWORD }, '192.0.2.9'))).kind,
      'signed_in',
    );
    for (let i = 0; i < 5; i++)
      await method().finish(input({ email: `spray-${i}@example.com`, password: 'x' }, '192.0.2.9'));
    const blocked = await method().finish(input({ email, password: TEST_PASSWORD }, '192.0.2.9'));
    assert.ok(blocked.kind === 'throttled' && blocked.limit === 'address', JSON.stringify(blocked));
    assert.equal(
      (await method().finish(input({ email, password: TEST_PASSWORD }, '192.0.2.10'))).kind,
      'signed_in',
    );
  });
});
