// The /introspect answer cache (src/oauth/introspection-cache.ts): an answer read from the database before a clear
// (a revocation that committed meanwhile) is not stored after it, and nothing is served while the instance is not
// trusted.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/lib/clock.ts';
import { IntrospectionCache } from '../../src/oauth/introspection-cache.ts';

describe('IntrospectionCache', () => {
  const later = (clock: ManualClock) => new Date(clock.now().getTime() + 3_600_000);

  it('drops an answer read before a clear and stored after it', () => {
    const clock = new ManualClock();
    const cache = new IntrospectionCache<string>(clock);
    cache.setListening(true);
    const before = cache.generation;
    cache.clear(); // a change notification arrives while the database read is under way
    cache.set('k', 'active', later(clock), before);
    assert.equal(cache.get('k'), undefined);
    cache.set('k', 'active', later(clock), cache.generation);
    assert.equal(cache.get('k'), 'active');
  });

  it('serves nothing while not trusted, and is asked with the same clock reading as the expiry', () => {
    const clock = new ManualClock();
    let trusted = true;
    const seen: number[] = [];
    const cache = new IntrospectionCache<string>(clock, 10, 60, (now) => {
      seen.push(now);
      return trusted;
    });
    cache.setListening(true);
    cache.set('k', 'active', later(clock));
    assert.equal(cache.get('k'), 'active');
    trusted = false;
    assert.equal(cache.get('k'), undefined);
    assert.equal(cache.enabled, false);
    trusted = true;
    assert.equal(cache.get('k'), 'active');
    assert.ok(seen.every((n) => n === clock.now().getTime()));
  });
});
