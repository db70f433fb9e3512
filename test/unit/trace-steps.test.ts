// What a trace row may hold (src/trace/steps.ts): URLs without their query or fragment, no email address, no control
// character, and a bounded length, whatever a client sends.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { cleanStep, MAX_DETAIL, traceText } from '../../src/trace/steps.ts';

it('drops query strings and fragments of URLs, and keeps the URL', () => {
  assert.equal(
    traceText('redirect_uri not registered: https://app.example/cb?code=abc&state=x#frag (page)'),
    'redirect_uri not registered: https://app.example/cb (page)',
  );
  assert.equal(traceText('http://127.0.0.1:9/callback#token=t'), 'http://127.0.0.1:9/callback');
});

it('replaces email addresses and control characters, and caps the length', () => {
  assert.equal(traceText('sign-in as alice@example.com failed'), 'sign-in as (email) failed');
  assert.equal(traceText('a\u0000b\nc\u009bd'), 'a b c d');
  const long = traceText('x'.repeat(5000));
  assert.equal(long.length, MAX_DETAIL);
  assert.ok(long.endsWith('…'));
});

it('cleans every text field of a step and stamps it', () => {
  const at = new Date('2026-11-30T10:00:00Z');
  const s = cleanStep(
    {
      clientId: 'c'.repeat(900),
      step: 'authorize',
      outcome: 'invalid_request',
      detail: 'https://a.example/x?secret=1',
      resource: 'https://mcp.example.com/mcp?k=v',
    },
    at,
  );
  assert.equal(s.clientId.length, 500);
  assert.equal(s.detail, 'https://a.example/x');
  assert.equal(s.resource, 'https://mcp.example.com/mcp');
  assert.deepEqual([s.at, s.repeat], [at, 1]);
});
