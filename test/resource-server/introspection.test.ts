import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ManualClock } from '../../src/lib/clock.ts';
import {
  createIntrospectionVerifier,
  IntrospectionError,
  type IntrospectionVerifierOptions,
} from '../../src/resource-server/index.ts';
import {
  type FakeIntrospection,
  RS_CLIENT_ID,
  RS_CLIENT_SECRET,
  startFakeIntrospection,
  type TokenClaims,
} from './fake-introspection.ts';

const RESOURCE = 'https://mcp.example.com/mcp';

describe('introspection verifier (RFC 7662)', () => {
  let as: FakeIntrospection;
  let clock: ManualClock;
  const nowSeconds = () => Math.floor(clock.now().getTime() / 1000);
  const claims = (over: Partial<TokenClaims> = {}): TokenClaims => ({
    scope: 'mcp profile',
    client_id: 'client_1',
    sub: 'user_1',
    username: 'ada@example.com',
    aud: RESOURCE,
    iss: as.issuer,
    iat: nowSeconds(),
    exp: nowSeconds() + 3600,
    ...over,
  });
  const verifier = (over: Partial<IntrospectionVerifierOptions> = {}) =>
    createIntrospectionVerifier({
      introspectionEndpoint: as.url,
      clientId: RS_CLIENT_ID,
      clientSecret: RS_CLIENT_SECRET,
      clock,
      ...over,
    });

  before(async () => {
    as = await startFakeIntrospection();
  });
  after(() => as.close());
  beforeEach(() => {
    clock = new ManualClock(Date.UTC(2026, 0, 1));
    as.calls.length = 0;
    as.failWith(null);
    as.delayMs = 0;
    as.rawAnswer = null;
  });

  it('posts token and token_type_hint=access_token with HTTP Basic credentials by default (RFC 7662 §2.1)', async () => {
    as.setToken('tok-basic', claims());
    const result = await verifier().verify('tok-basic');
    assert.equal(result.active, true);
    assert.deepEqual(as.calls, [
      { token: 'tok-basic', tokenTypeHint: 'access_token', method: 'client_secret_basic' },
    ]);
  });

  it('sends the credentials in the form body with client_secret_post (RFC 6749 §2.3.1)', async () => {
    as.setToken('tok-post', claims());
    const result = await verifier({ authMethod: 'client_secret_post' }).verify('tok-post');
    assert.equal(result.active, true);
    assert.equal(as.calls[0]?.method, 'client_secret_post');
  });

  it('maps an active answer to scopes, clientId, sub, username, aud, exp, iat and iss (RFC 7662 §2.2)', async () => {
    const c = claims({ aud: [RESOURCE, 'https://other.example.com'] });
    as.setToken('tok-map', c);
    assert.deepEqual(await verifier().verify('tok-map'), {
      active: true,
      scopes: ['mcp', 'profile'],
      clientId: 'client_1',
      sub: 'user_1',
      username: 'ada@example.com',
      aud: [RESOURCE, 'https://other.example.com'],
      exp: c.exp,
      iat: c.iat,
      iss: as.issuer,
    });
  });

  it('answers inactive for an unknown token and asks again every time (negative answers are never cached)', async () => {
    const v = verifier();
    assert.deepEqual(await v.verify('nope'), { active: false });
    assert.deepEqual(await v.verify('nope'), { active: false });
    assert.equal(as.calls.length, 2);
    assert.equal(v.cache.size, 0);
  });

  it('reuses a positive answer within cacheTtlSeconds without calling the endpoint again', async () => {
    as.setToken('tok-cache', claims());
    const v = verifier({ cacheTtlSeconds: 30 });
    await v.verify('tok-cache');
    clock.advance(29);
    const again = await v.verify('tok-cache');
    assert.equal(again.active, true);
    assert.equal(as.calls.length, 1);
  });

  it('asks the endpoint again once cacheTtlSeconds have passed, and sees a revocation then', async () => {
    as.setToken('tok-ttl', claims());
    const v = verifier({ cacheTtlSeconds: 30 });
    await v.verify('tok-ttl');
    as.setToken('tok-ttl', undefined);
    clock.advance(30);
    assert.deepEqual(await v.verify('tok-ttl'), { active: false });
    assert.equal(as.calls.length, 2);
  });

  it('never reuses a positive answer past the token exp, even with a longer TTL (RFC 7662 §4)', async () => {
    as.setToken('tok-exp', claims({ exp: nowSeconds() + 10 }));
    const v = verifier({ cacheTtlSeconds: 300 });
    await v.verify('tok-exp');
    clock.advance(9);
    await v.verify('tok-exp');
    assert.equal(as.calls.length, 1);
    clock.advance(1);
    await v.verify('tok-exp');
    assert.equal(as.calls.length, 2);
  });

  it('does not cache a token the endpoint calls active but whose exp has passed', async () => {
    as.setToken('tok-stale', claims({ exp: nowSeconds() - 1 }));
    const v = verifier();
    await v.verify('tok-stale');
    await v.verify('tok-stale');
    assert.equal(as.calls.length, 2);
  });

  it('calls the endpoint on every request when cacheTtlSeconds is 0', async () => {
    as.setToken('tok-nocache', claims());
    const v = verifier({ cacheTtlSeconds: 0 });
    await v.verify('tok-nocache');
    await v.verify('tok-nocache');
    assert.equal(as.calls.length, 2);
  });

  it('treats a 5xx answer as an error, caches nothing, and recovers on the next call', async () => {
    as.setToken('tok-5xx', claims());
    const v = verifier();
    as.failWith(503);
    await assert.rejects(
      v.verify('tok-5xx'),
      (err) => err instanceof IntrospectionError && err.status === 503,
    );
    assert.equal(v.cache.size, 0);
    as.failWith(null);
    assert.equal((await v.verify('tok-5xx')).active, true);
    assert.equal(as.calls.length, 2);
  });

  it('treats a 401 for its own credentials as an error, not as an inactive token', async () => {
    as.setToken('tok-creds', claims());
    const v = verifier({ clientSecret: 'wrong' });
    await assert.rejects(
      v.verify('tok-creds'),
      (err) => err instanceof IntrospectionError && err.status === 401,
    );
  });

  it('treats an unreachable endpoint as an error', async () => {
    const down = await startFakeIntrospection();
    await down.close();
    const v = verifier({ introspectionEndpoint: down.url });
    await assert.rejects(
      v.verify('tok-any'),
      (err) => err instanceof IntrospectionError && err.status === undefined,
    );
  });

  it('gives up after timeoutMs', async () => {
    as.setToken('tok-slow', claims());
    as.delayMs = 500;
    const v = verifier({ timeoutMs: 50 });
    await assert.rejects(
      v.verify('tok-slow'),
      (err) => err instanceof IntrospectionError && /timed out/.test(err.message),
    );
    assert.equal(v.cache.size, 0);
  });

  it('treats an active answer without aud, sub, exp or iss as an error, never as active', async () => {
    const v = verifier();
    for (const missing of ['aud', 'sub', 'exp', 'iss', 'client_id'] as const) {
      const body: Record<string, unknown> = { active: true, ...claims() };
      delete body[missing];
      as.rawAnswer = body;
      await assert.rejects(v.verify(`tok-no-${missing}`), IntrospectionError, missing);
    }
    as.rawAnswer = { active: 'true' };
    await assert.rejects(v.verify('tok-string-active'), IntrospectionError);
    assert.equal(v.cache.size, 0);
  });

  it('keeps at most maxCacheEntries answers, evicting the least recently used', async () => {
    const v = verifier({ maxCacheEntries: 3 });
    for (const t of ['t1', 't2', 't3', 't4']) as.setToken(t, claims());
    await v.verify('t1');
    await v.verify('t2');
    await v.verify('t3');
    await v.verify('t1'); // t1 is now the most recently used; t2 the least
    await v.verify('t4');
    assert.equal(v.cache.size, 3);
    as.calls.length = 0;
    await v.verify('t1');
    await v.verify('t3');
    await v.verify('t4');
    assert.equal(as.calls.length, 0);
    await v.verify('t2');
    assert.deepEqual(
      as.calls.map((c) => c.token),
      ['t2'],
    );
  });

  it('keys its cache by the SHA-256 of the token, never the token itself', async () => {
    const token = 'tok-secret-value-that-must-not-appear';
    as.setToken(token, claims());
    const v = verifier();
    await v.verify(token);
    const keys = v.cache.keys();
    assert.equal(keys.length, 1);
    assert.equal(keys[0], createHash('sha256').update(token).digest('base64url'));
    assert.ok(!keys.some((k) => k.includes(token) || k.includes('tok-secret')));
  });

  it('shares one introspection call between concurrent verifications of one token', async () => {
    as.setToken('tok-burst', claims());
    as.delayMs = 30;
    const v = verifier();
    const results = await Promise.all(Array.from({ length: 5 }, () => v.verify('tok-burst')));
    assert.ok(results.every((r) => r.active));
    assert.equal(as.calls.length, 1);
  });

  it('forgets every cached answer on clear()', async () => {
    as.setToken('tok-clear', claims());
    const v = verifier();
    await v.verify('tok-clear');
    v.clear();
    await v.verify('tok-clear');
    assert.equal(as.calls.length, 2);
  });

  it('refuses a bad configuration at construction, naming the option', () => {
    assert.throws(() => verifier({ introspectionEndpoint: '/introspect' }), /introspectionEndpoint/);
    assert.throws(() => verifier({ clientSecret: '' }), /clientSecret/);
    assert.throws(() => verifier({ cacheTtlSeconds: -1 }), /cacheTtlSeconds/);
    assert.throws(() => verifier({ timeoutMs: 0 }), /timeoutMs/);
  });
});
