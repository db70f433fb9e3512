// The pure rules of Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01): which
// client_ids are document URLs (§3), which addresses are special-use (§6.5, RFC 6890) and how long a response
// stays fresh (§4.4, RFC 9111 §4.2).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CIMD_MAX_FRESHNESS,
  CIMD_MIN_FRESHNESS,
  cimdClientIdProblem,
  freshnessLifetime,
  isCimdClientId,
  specialUseRange,
} from '../../../src/oauth/cimd/index.ts';

describe('CIMD client identifier URLs (draft §3)', () => {
  it('accepts the https client_ids Claude uses', () => {
    assert.ok(isCimdClientId('https://claude.ai/oauth/mcp-oauth-client-metadata'));
    assert.ok(isCimdClientId('https://claude.ai/oauth/claude-code-client-metadata'));
    assert.ok(isCimdClientId('https://example.com:8443/client.json?v=2'));
  });

  const rejected: [string, string, RegExp][] = [
    ['an http URL', 'http://example.com/client', /must use https/],
    ['a URL without a path', 'https://example.com', /must have a path/],
    ['a URL whose path is only /', 'https://example.com/', /must have a path/],
    ['a fragment', 'https://example.com/client#x', /fragment/],
    ['an empty fragment', 'https://example.com/client#', /fragment/],
    ['userinfo', 'https://user:pw@example.com/client', /username or password/],
    ['a username alone', 'https://user@example.com/client', /username or password/],
    ['a .. segment', 'https://example.com/a/../client', /\. or \.\. path segments/],
    ['a . segment', 'https://example.com/./client', /\. or \.\. path segments/],
    ['a percent-encoded .. segment', 'https://example.com/a/%2E%2e/client', /\. or \.\. path segments/],
    ['whitespace', 'https://example.com/a client', /whitespace/],
    ['a backslash', 'https://example.com\\client', /backslash/],
    ['something that is not a URL', 'https://', /not a URL/],
  ];
  for (const [what, id, pattern] of rejected) {
    it(`refuses a client_id with ${what} (§3)`, () => {
      assert.match(cimdClientIdProblem(id) ?? '', pattern);
    });
  }

  it('accepts http only on a loopback host name, and only under CIMD_ALLOW_LOOPBACK', () => {
    assert.ok(!isCimdClientId('http://127.0.0.1:9/client'));
    assert.ok(isCimdClientId('http://127.0.0.1:9/client', { allowLoopback: true }));
    assert.ok(isCimdClientId('http://localhost/client', { allowLoopback: true }));
    assert.ok(!isCimdClientId('http://example.com/client', { allowLoopback: true }));
  });
});

describe('special-use addresses (draft §6.5, RFC 6890)', () => {
  const special: [string, string][] = [
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.1.1', 'private'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'shared (CGNAT)'],
    ['0.0.0.0', 'unspecified'],
    ['192.0.2.10', 'documentation'],
    ['198.51.100.1', 'documentation'],
    ['203.0.113.7', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['192.0.0.8', 'IETF protocol assignment'],
    ['224.0.0.251', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fd00::1', 'unique-local (private)'],
    ['fc00::1', 'unique-local (private)'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:a9fe:a9fe', 'link-local'],
    ['64:ff9b::a00:1', 'private'],
    ['2001:db8::1', 'documentation'],
    ['2001::1', 'IETF protocol assignment'],
    ['2002:a00:1::1', '6to4'],
    ['100::1', 'discard-only'],
    ['::a00:1', 'reserved'],
  ];
  for (const [address, range] of special) {
    it(`classifies ${address} as ${range}`, () => {
      assert.equal(specialUseRange(address), range);
    });
  }

  it('treats globally routable addresses as usable, including NAT64 of a public IPv4 address', () => {
    for (const a of [
      '93.184.216.34',
      '172.32.0.1',
      '100.128.0.1',
      '2606:4700::6810:84e5',
      '64:ff9b::5db8:d822',
    ]) {
      assert.equal(specialUseRange(a), undefined, a);
    }
  });
});

describe('freshness of a fetched document (draft §4.4, RFC 9111 §4.2)', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  it('honours Cache-Control max-age', () => {
    assert.equal(freshnessLifetime({ 'cache-control': 'public, max-age=600' }, now), 600);
  });
  it('clamps max-age to at least a minute and at most a day', () => {
    assert.equal(freshnessLifetime({ 'cache-control': 'max-age=5' }, now), CIMD_MIN_FRESHNESS);
    assert.equal(freshnessLifetime({ 'cache-control': 'max-age=31536000' }, now), CIMD_MAX_FRESHNESS);
  });
  it('treats no-store and no-cache as the minimum', () => {
    assert.equal(freshnessLifetime({ 'cache-control': 'no-store, max-age=600' }, now), CIMD_MIN_FRESHNESS);
    assert.equal(freshnessLifetime({ 'cache-control': 'no-cache' }, now), CIMD_MIN_FRESHNESS);
  });
  it('uses Expires relative to Date when there is no max-age, less Age', () => {
    const headers = { date: 'Thu, 01 Jan 2026 00:00:00 GMT', expires: 'Thu, 01 Jan 2026 01:00:00 GMT' };
    assert.equal(freshnessLifetime(headers, now), 3600);
    assert.equal(freshnessLifetime({ 'cache-control': 'max-age=600', age: '100' }, now), 500);
    assert.equal(freshnessLifetime({ expires: '0' }, now), CIMD_MIN_FRESHNESS);
  });
});
