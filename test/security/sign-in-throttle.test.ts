// Sign-in throttling that cannot lock a person out (issue 10; README "Security notes"). Client addresses come from
// X-Forwarded-For with TRUST_PROXY=1 (the test plays the proxy). The per-(account, address) and per-address limits
// refuse with 429 and Retry-After; the account-wide limit only slows sign-ins (a growing wait, timed on the
// injected clock, so no test waits), and the owner gets in from their own address while others hammer the account.
import assert from 'node:assert/strict';
import { after, before, beforeEach, it } from 'node:test';
import { forEachDatabase } from '../helpers/db.ts';
import { addUser, startServer, TEST_PASSWORD, type TestServer } from '../helpers/server.ts';

const WINDOW = 900;

forEachDatabase('sign-in throttling', (kind) => {
  let server: TestServer;
  let email: string;

  before(async () => {
    server = await startServer(kind, {
      env: {
        TRUST_PROXY: '1',
        LOGIN_MAX_ATTEMPTS_PER_ACCOUNT: '3',
        LOGIN_MAX_ATTEMPTS_PER_ADDRESS: '6',
        LOGIN_THROTTLE_WINDOW: String(WINDOW),
        LOGIN_MAX_DELAY: '8',
      },
    });
    email = await addUser(server.stores, 'owner@example.com');
  });
  after(() => server.close());
  beforeEach(async () => {
    await server.database.db.prisma.rateLimit.deleteMany({});
    server.clock.slept.length = 0;
  });

  /** One sign-in attempt from `address`, as a browser there would make it (its own pre-session and CSRF token). */
  async function attempt(address: string, who: string, password: string) {
    const headers = { 'x-forwarded-for': address };
    const page = await fetch(`${server.url}/login`, { headers });
    const cookie = page.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const csrf = /name="csrf_token" value="([^"]+)"/.exec(await page.text())![1]!;
    const res = await fetch(`${server.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { ...headers, cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ email: who, password, csrf_token: csrf }),
    });
    await res.arrayBuffer();
    return res;
  }

  it('lets the owner in from their address while an attacker hammers the account from many others', async () => {
    // Twelve addresses, three wrong passwords each: 36 failures on the account, far past its limit of 3.
    for (let a = 1; a <= 12; a++) {
      for (let i = 0; i < 3; i++) {
        assert.equal((await attempt(`198.51.100.${a}`, email, 'guess')).status, 401);
      }
    }
    const before = server.clock.now().getTime();
    const owner = await attempt('203.0.113.5', email, TEST_PASSWORD);
    assert.equal(owner.status, 303, 'the owner signs in');
    assert.match(owner.headers.get('set-cookie') ?? '', /latchkey_session=/);
    assert.ok(server.clock.now().getTime() - before <= 8_000, 'after at most LOGIN_MAX_DELAY');
  });

  it('slows sign-ins to a much-tried account with a growing wait, capped, and never refuses one', async () => {
    const statuses: number[] = [];
    for (let a = 1; a <= 8; a++) statuses.push((await attempt(`198.51.100.${a}`, email, 'guess')).status);
    assert.deepEqual(statuses, Array(8).fill(401), 'the account-wide limit refuses nobody');
    // Attempts 1–3 are within the limit; then 1, 2, 4, 8 seconds, and no more than LOGIN_MAX_DELAY.
    assert.deepEqual(server.clock.slept, [1, 2, 4, 8, 8]);
    assert.equal((await attempt('203.0.113.5', email, TEST_PASSWORD)).status, 303);
  });

  it('refuses one address past the per-(account, address) limit with 429 and Retry-After, even the right password', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await attempt('198.51.100.1', email, 'guess')).status, 401);
    const refused = await attempt('198.51.100.1', email, TEST_PASSWORD);
    assert.equal(refused.status, 429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(retryAfter > 0 && retryAfter <= WINDOW, `Retry-After ${retryAfter}`);
    // The same account from the owner's address is not refused…
    assert.equal((await attempt('203.0.113.5', email, TEST_PASSWORD)).status, 303);
    // …and the refused address gets its turn back when the window ends.
    server.clock.advance(retryAfter);
    assert.equal((await attempt('198.51.100.1', email, TEST_PASSWORD)).status, 303);
  });

  it('refuses one address past the per-address limit across accounts with 429 and Retry-After', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      statuses.push((await attempt('198.51.100.77', `sprayed-${i}@example.com`, 'guess')).status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401, 429, 429]);
    const refused = await attempt('198.51.100.77', email, TEST_PASSWORD);
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get('retry-after')) > 0);
    assert.equal((await attempt('203.0.113.5', email, TEST_PASSWORD)).status, 303, 'other addresses are not');
  });
});
