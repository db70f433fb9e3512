import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected loadConfig to throw');
}

describe('configuration', () => {
  it('defaults to the operator contract in DESIGN.md', () => {
    const c = loadConfig({});
    assert.equal(c.issuer, 'http://localhost:3000');
    assert.equal(c.port, 3000);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.dataDir, './data');
    assert.equal(c.logLevel, 'info');
    assert.equal(c.codeTtl, 600);
    assert.equal(c.accessTokenTtl, 3600);
    assert.equal(c.refreshTokenTtl, 2592000);
    assert.equal(c.refreshReuseWindow, 60);
    assert.equal(c.allowDynamicRegistration, true);
    assert.equal(c.cimdAllowLoopback, false);
  });

  it('reads TRUST_PROXY as false, a hop count (true is one hop), or proxy addresses and CIDR ranges', () => {
    assert.equal(loadConfig({}).trustProxy, false);
    assert.equal(loadConfig({ TRUST_PROXY: 'false' }).trustProxy, false);
    assert.equal(loadConfig({ TRUST_PROXY: '0' }).trustProxy, false);
    // `true` no longer believes every hop (a client could then pick its own address): it is one hop.
    assert.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, 1);
    assert.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2);
    assert.deepEqual(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.7,fd00::/8 loopback' }).trustProxy, [
      '10.0.0.0/8',
      '192.168.1.7',
      'fd00::/8',
      'loopback',
    ]);
  });

  it('has slow-client limits by default', () => {
    const c = loadConfig({});
    assert.deepEqual(
      [c.headersTimeout, c.requestTimeout, c.connectionTimeout, c.keepAliveTimeout, c.bodyLimit],
      [10, 30, 60, 5, 65536],
    );
  });

  it('derives the default issuer from PORT', () => {
    assert.equal(loadConfig({ PORT: '8080' }).issuer, 'http://localhost:8080');
  });

  it('strips a trailing slash from ISSUER (RFC 8414 §2)', () => {
    assert.equal(loadConfig({ ISSUER: 'https://auth.example.com/' }).issuer, 'https://auth.example.com');
    assert.equal(
      loadConfig({ ISSUER: 'https://auth.example.com/t1/' }).issuer,
      'https://auth.example.com/t1',
    );
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    ['PORT', { PORT: 'eighty' }, /whole number/],
    ['PORT', { PORT: '70000' }, /between 0 and 65535/],
    ['ISSUER', { ISSUER: 'not a url' }, /absolute URL/],
    ['ISSUER', { ISSUER: 'ftp://auth.example.com' }, /https/],
    ['ISSUER', { ISSUER: 'https://auth.example.com/?x=1' }, /query/],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://localhost/db' }, /postgres/],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }, /one of/],
    ['CODE_TTL', { CODE_TTL: '-5' }, /whole number/],
    ['ACCESS_TOKEN_TTL', { ACCESS_TOKEN_TTL: '0' }, /between/],
    ['ALLOW_DYNAMIC_REGISTRATION', { ALLOW_DYNAMIC_REGISTRATION: 'maybe' }, /true or false/],
    ['CIMD_ALLOW_LOOPBACK', { CIMD_ALLOW_LOOPBACK: 'yes please' }, /true or false/],
    ['SCOPES', { SCOPES: 'mcp "quoted"' }, /not a valid scope/],
    ['SCOPE_DESCRIPTIONS', { SCOPE_DESCRIPTIONS: '{nope' }, /JSON object/],
    ['REGISTRATION_ACCESS_TOKEN', { REGISTRATION_ACCESS_TOKEN: 'short' }, /at least 32/],
    ['RESOURCE_SERVERS', { RESOURCE_SERVERS: '[{"uri":"https://mcp.example.com"}]' }, /client_id/],
    ['SESSION_IDLE_TTL', { SESSION_IDLE_TTL: '100000', SESSION_TTL: '3600' }, /must not exceed SESSION_TTL/],
    ['TRUST_PROXY', { TRUST_PROXY: 'maybe' }, /hop count, an IP address, a CIDR range/],
    ['TRUST_PROXY', { TRUST_PROXY: '10.0.0.0/33' }, /"10.0.0.0\/33"/],
    ['TRUST_PROXY', { TRUST_PROXY: '11' }, /between 0 and 10/],
    ['REQUEST_TIMEOUT', { HEADERS_TIMEOUT: '20', REQUEST_TIMEOUT: '10' }, /not be less than HEADERS_TIMEOUT/],
    ['BODY_LIMIT', { BODY_LIMIT: '10' }, /between/],
  ];
  for (const [variable, env, message] of bad) {
    it(`rejects a bad ${variable} naming the variable and the problem (${JSON.stringify(env)})`, () => {
      const err = configError(env);
      assert.equal(err.variable, variable);
      assert.match(err.message, new RegExp(`^${variable}: `));
      assert.match(err.message, message);
    });
  }
});
