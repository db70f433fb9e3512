// The doctor's pure parts: reading the Bearer challenge, the well-known URLs it tries (README: Check a deployment).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { discoveryLocations } from '../../src/doctor/authorization-server.ts';
import { bearerChallenge, metadataLocations } from '../../src/doctor/resource.ts';

it('reads the Bearer challenge among others, quoted and bare values alike', () => {
  assert.deepEqual(bearerChallenge('Bearer resource_metadata="https://a.example/.well-known/x", scope=mcp'), {
    resource_metadata: 'https://a.example/.well-known/x',
    scope: 'mcp',
  });
  assert.deepEqual(
    bearerChallenge('Basic realm="x", Bearer error="invalid_token", error_description="a \\"b\\", c"'),
    { error: 'invalid_token', error_description: 'a "b", c' },
  );
  assert.deepEqual(bearerChallenge('bearer'), {});
  assert.equal(bearerChallenge('Basic realm="Bearer"'), undefined);
  assert.equal(bearerChallenge(null), undefined);
});

it('tries the path-suffixed and the root protected resource metadata, the root alone for a bare host', () => {
  assert.deepEqual(
    metadataLocations('https://mcp.example.com/v1/mcp').map((l) => l.url),
    [
      'https://mcp.example.com/.well-known/oauth-protected-resource/v1/mcp',
      'https://mcp.example.com/.well-known/oauth-protected-resource',
    ],
  );
  assert.deepEqual(
    metadataLocations('https://mcp.example.com/').map((l) => l.url),
    ['https://mcp.example.com/.well-known/oauth-protected-resource'],
  );
});

it('tries the discovery URLs the MCP SDK builds, path-inserted for an issuer with a path', () => {
  assert.deepEqual(
    discoveryLocations('https://auth.example.com').map((l) => l.url),
    [
      'https://auth.example.com/.well-known/oauth-authorization-server',
      'https://auth.example.com/.well-known/openid-configuration',
    ],
  );
  assert.deepEqual(
    discoveryLocations('https://auth.example.com/t1').map((l) => l.url),
    [
      'https://auth.example.com/.well-known/oauth-authorization-server/t1',
      'https://auth.example.com/.well-known/openid-configuration/t1',
      'https://auth.example.com/t1/.well-known/openid-configuration',
    ],
  );
});
