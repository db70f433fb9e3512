// Issue 13: an authorization request Latchkey cannot send back to the app (RFC 6749 §4.1.2.1) is told to the person
// in plain words, each kind of problem with its own heading; the protocol's code stays for support.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { invalidClient, invalidRequest } from '../../src/oauth/errors.ts';
import { explainAuthorizationError, formatWhen, hostsOf } from '../../src/web/explain.ts';

describe('plain-language explanations', () => {
  it('tells an unknown app, an unregistered return address and a damaged link apart', () => {
    for (const [err, heading] of [
      [invalidRequest('unknown client_id'), 'This app is not recognised'],
      [invalidRequest('client_id is required'), 'This app is not recognised'],
      [invalidClient('the document could not be fetched'), 'This app is not recognised'],
      [
        invalidRequest('redirect_uri is not registered for this client'),
        'This app asked to send you somewhere unexpected',
      ],
      [invalidRequest('redirect_uri is required'), 'This app asked to send you somewhere unexpected'],
      [invalidRequest('state must not be repeated'), 'This link cannot be used'],
    ] as const) {
      const explained = explainAuthorizationError(err);
      assert.equal(explained.heading, heading, err.description);
      assert.doesNotMatch(
        explained.message,
        /client_id|redirect_uri|invalid_/,
        'no protocol words in the message',
      );
    }
  });

  it('writes times in UTC and hosts once each', () => {
    assert.equal(formatWhen(new Date('2026-11-30T09:05:00Z')), '30 Nov 2026, 09:05 UTC');
    assert.deepEqual(
      hostsOf(['https://a.example/cb', 'https://a.example/other', 'http://127.0.0.1:8/x', 'nonsense']),
      ['a.example', '127.0.0.1:8', 'nonsense'],
    );
  });
});
