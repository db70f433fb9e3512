// The diagnosis `latchkey trace` prints (src/trace/diagnosis.ts): one named failure for each usual way a connector
// stops, judged from the steps alone.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DiagnosedStep, diagnose } from '../../src/trace/diagnosis.ts';
import { REDIRECT_MISMATCH, REFRESH_REPLAY } from '../../src/trace/steps.ts';

const T0 = Date.parse('2026-11-30T10:00:00Z');
/** Steps one second apart: [step, outcome, detail?, resource?]. */
function steps(...list: [string, string, string?, string?][]): DiagnosedStep[] {
  return list.map(([step, outcome, detail, resource], i) => ({
    at: new Date(T0 + i * 1000),
    step,
    outcome,
    detail: detail ?? null,
    resource: resource ?? null,
  }));
}
const kindOf = (...list: [string, string, string?, string?][]) => diagnose(steps(...list)).kind;

const FLOW: [string, string, string?, string?][] = [
  ['registration', 'ok'],
  ['authorize', 'ok', 'sent to sign in'],
  ['sign_in', 'ok'],
  ['authorize', 'ok', 'consent page shown'],
  ['consent', 'given'],
  ['code_issued', 'ok'],
];

describe('trace diagnosis', () => {
  it('names a code issued but never redeemed, with the time it was issued', () => {
    const d = diagnose(steps(...FLOW));
    assert.equal(d.kind, 'code_not_redeemed');
    assert.match(d.message, /^code issued but never redeemed: .*2026-11-30 10:00:05Z/);
    assert.equal(kindOf(...FLOW, ['token', 'ok', 'authorization_code']), 'ok', 'redeemed: no failure');
  });

  it('names a redirect URI mismatch, with the URI asked for', () => {
    const d = diagnose(
      steps([
        'authorize',
        'invalid_request',
        `${REDIRECT_MISMATCH}: https://app.example/cb (shown on the error page)`,
      ]),
    );
    assert.equal(d.kind, 'redirect_uri_mismatch');
    assert.match(d.message, /^redirect URI mismatch: .*https:\/\/app\.example\/cb/);
  });

  it('names invalid_grant on refresh after a replay, even after later refused refreshes and introspections', () => {
    const replay: [string, string, string?, string?][] = [
      ...FLOW,
      ['token', 'ok'],
      ['refresh', 'ok'],
      ['refresh', 'invalid_grant', `${REFRESH_REPLAY}; the grant has been revoked`],
      ['refresh', 'invalid_grant', 'refresh token was revoked'],
      ['introspection', 'inactive', 'grant revoked', 'https://mcp.example.com/mcp'],
    ];
    const d = diagnose(steps(...replay));
    assert.equal(d.kind, 'refresh_replay');
    assert.match(d.message, /^invalid_grant on refresh after a replay/);
    assert.equal(kindOf(...replay, ['token', 'ok']), 'ok', 'a new sign-in ends the story');
  });

  it('names a resource that is not registered, at authorize or at /token', () => {
    const d = diagnose(
      steps(['authorize', 'invalid_target', 'unknown resource', 'https://mcp.other.example/mcp']),
    );
    assert.equal(d.kind, 'resource_not_registered');
    assert.match(d.message, /^resource not registered: https:\/\/mcp\.other\.example\/mcp/);
    assert.equal(kindOf(...FLOW, ['token', 'invalid_target', 'x']), 'resource_not_registered');
  });

  it('names a failed CIMD fetch and a refused registration', () => {
    assert.equal(kindOf(['cimd_fetch', 'failed', 'the document host answered 503']), 'cimd_fetch_failed');
    assert.equal(kindOf(['cimd_fetch', 'refused', 'client_id does not match']), 'registration_refused');
    assert.equal(kindOf(['cimd_fetch', 'ok']), 'registered_only');
  });

  it('names nothing seen, and the other places a flow stops', () => {
    assert.equal(diagnose([]).kind, 'nothing_seen');
    assert.match(diagnose([]).message, /^nothing seen/);
    assert.equal(kindOf(['authorize', 'ok', 'sent to sign in']), 'stopped_at_sign_in');
    assert.equal(kindOf(['authorize', 'ok'], ['sign_in', 'invalid']), 'sign_in_failed');
    assert.equal(kindOf(['authorize', 'ok'], ['consent', 'denied']), 'consent_denied');
    assert.equal(kindOf(['authorize', 'unsupported_response_type', 'x']), 'authorize_refused');
    assert.equal(
      kindOf(...FLOW, ['token', 'invalid_grant', 'code_verifier does not match']),
      'token_refused',
    );
    assert.equal(
      kindOf(['token', 'ok'], ['introspection', 'inactive', 'token expired']),
      'introspection_inactive',
    );
  });
});
