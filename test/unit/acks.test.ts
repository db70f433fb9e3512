// Waiting for acknowledgements (src/acks.ts): a wait ends when every expected instance has answered, or when its
// bound runs out (timers the test fires), naming who did not answer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AckWaiters } from '../../src/acks.ts';
import { ManualTimers } from '../helpers/timers.ts';

describe('AckWaiters', () => {
  it('resolves with nobody missing once every expected instance has answered, and clears its timer', async () => {
    const timers = new ManualTimers();
    const acks = new AckWaiters(timers);
    const done = acks.expect('m1', ['a', 'b'], 2000);
    assert.deepEqual(timers.delays, [2000]);
    acks.received('a:m1');
    assert.equal(acks.size, 1);
    acks.received('b:m1');
    assert.deepEqual(await done, []);
    assert.equal(timers.size, 0);
    assert.equal(acks.size, 0);
  });

  it('resolves with the instances that did not answer when the bound runs out', async () => {
    const timers = new ManualTimers();
    const acks = new AckWaiters(timers);
    const done = acks.expect('m1', ['a', 'b', 'c'], 2000);
    acks.received('b:m1');
    timers.fireAll();
    assert.deepEqual((await done).sort(), ['a', 'c']);
    // A late answer finds no wait and changes nothing.
    acks.received('a:m1');
    assert.equal(acks.size, 0);
  });

  it('ignores answers to other markers, unknown instances and malformed payloads', async () => {
    const timers = new ManualTimers();
    const acks = new AckWaiters(timers);
    const done = acks.expect('m1', ['a'], 2000);
    for (const p of ['a:m2', 'z:m1', '', ':m1', 'a', 'a:m1:x']) acks.received(p);
    assert.equal(acks.size, 1);
    acks.received('a:m1');
    assert.deepEqual(await done, []);
  });

  it('keeps concurrent waits apart', async () => {
    const timers = new ManualTimers();
    const acks = new AckWaiters(timers);
    const one = acks.expect('m1', ['a'], 2000);
    const two = acks.expect('m2', ['a', 'b'], 2000);
    acks.received('a:m2');
    acks.received('b:m2');
    assert.deepEqual(await two, []);
    timers.fireAll();
    assert.deepEqual(await one, ['a']);
  });

  it('waits for nobody when nobody is expected, and sets no timer', async () => {
    const timers = new ManualTimers();
    const acks = new AckWaiters(timers);
    assert.deepEqual(await acks.expect('m1', [], 2000), []);
    assert.equal(timers.size, 0);
  });

  it('cancel and stopAll end waits at once, naming who had not answered', async () => {
    const timers = new ManualTimers();
    const acks = new AckWaiters(timers);
    const one = acks.expect('m1', ['a'], 2000);
    const two = acks.expect('m2', ['b'], 2000);
    acks.cancel('m1');
    assert.deepEqual(await one, ['a']);
    acks.stopAll();
    assert.deepEqual(await two, ['b']);
    assert.equal(timers.size, 0);
  });
});
