// "Did you mean" for the CLI: the nearest known names to a mistyped one, and none when nothing is near.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { didYouMean, editDistance, nearest } from '../src/cli/suggest.ts';

describe('did you mean', () => {
  it('counts insertions, deletions, substitutions and swapped neighbours as one edit each', () => {
    assert.equal(editDistance('list', 'list'), 0);
    assert.equal(editDistance('lsit', 'list'), 1);
    assert.equal(editDistance('usr', 'user'), 1);
    assert.equal(editDistance('clinet', 'client'), 1);
    assert.equal(editDistance('kitten', 'sitting'), 3);
  });

  it('suggests near names, nearest first, and a name that begins with what was typed', () => {
    assert.deepEqual(nearest('usr', ['migrate', 'user', 'client', 'resource', 'grant']), ['user']);
    assert.deepEqual(nearest('--clinet', ['--user', '--client']), ['--client']);
    assert.deepEqual(nearest('res', ['resource', 'grant']), ['resource']);
    assert.deepEqual(nearest('frobnicate', ['migrate', 'user', 'client', 'resource', 'grant']), []);
    assert.deepEqual(nearest('x', ['add', 'list']), []);
  });

  it('words the suggestion for a message', () => {
    assert.equal(didYouMean([]), '');
    assert.equal(didYouMean(['user']), "; did you mean 'user'?");
    assert.equal(didYouMean(['a', 'b', 'c']), "; did you mean 'a' or 'b'?");
  });
});
