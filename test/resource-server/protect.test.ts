// The framework-free parts: resource comparison, challenges, and metadata locations.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeResource as latchkeyNormalizeResource } from '../../src/oauth/resources.ts';
import {
  audienceIncludes,
  createProtectedResourceMetadata,
  type IntrospectionResult,
  normalizeResource,
  protectedResourceMetadataPaths,
  protectedResourceMetadataUrl,
  protectResource,
  type TokenVerifier,
} from '../../src/resource-server/index.ts';

const RESOURCE = 'https://mcp.example.com/mcp';

function fixedVerifier(result: IntrospectionResult | Error): TokenVerifier {
  return {
    verify: async () => {
      if (result instanceof Error) throw result;
      return result;
    },
  };
}

const active = (over: Partial<Extract<IntrospectionResult, { active: true }>> = {}): IntrospectionResult => ({
  active: true,
  scopes: ['mcp'],
  clientId: 'client_1',
  sub: 'user_1',
  aud: RESOURCE,
  exp: 2_000_000_000,
  iat: 1_900_000_000,
  iss: 'https://auth.example.com',
  ...over,
});

describe('resource comparison (RFC 8707 §2)', () => {
  const cases = [
    'https://mcp.example.com',
    'https://mcp.example.com/',
    'HTTPS://MCP.Example.COM:443/mcp',
    'http://localhost:80/mcp',
    'http://127.0.0.1:3001/mcp/',
    'https://mcp.example.com/mcp?tenant=1',
    'https://mcp.example.com/Case/Path',
    'https://mcp.example.com/mcp#frag',
    'https://user:pw@mcp.example.com/mcp',
    'urn:example:resource',
    'not a url',
  ];

  it('normalises exactly as Latchkey does when it stores a resource server', () => {
    for (const c of cases) assert.equal(normalizeResource(c), latchkeyNormalizeResource(c), c);
  });

  it('treats scheme and host case, a default port and a bare host trailing slash as the same resource', () => {
    assert.ok(audienceIncludes('HTTPS://MCP.EXAMPLE.COM:443/mcp', RESOURCE));
    assert.ok(audienceIncludes('https://mcp.example.com/', 'https://mcp.example.com'));
    assert.ok(audienceIncludes('https://mcp.example.com', 'https://mcp.example.com/'));
  });

  it('treats a different path, path case or trailing slash after a path as another resource', () => {
    assert.ok(!audienceIncludes('https://mcp.example.com/mcp/', RESOURCE));
    assert.ok(!audienceIncludes('https://mcp.example.com/MCP', RESOURCE));
    assert.ok(!audienceIncludes('https://mcp.example.com', RESOURCE));
    assert.ok(!audienceIncludes('https://mcp.example.com:8443/mcp', RESOURCE));
  });

  it('accepts an audience list that contains the resource (RFC 7662 §2.2 aud)', () => {
    assert.ok(audienceIncludes(['https://other.example.com', RESOURCE], RESOURCE));
    assert.ok(!audienceIncludes([], RESOURCE));
  });
});

describe('protectResource (RFC 6750 §3)', () => {
  it('derives the path-suffixed metadata URL when none is given (RFC 9728 §3.1)', () => {
    const p = protectResource({ resource: RESOURCE, verifier: fixedVerifier({ active: false }) });
    assert.equal(p.resourceMetadataUrl, 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp');
  });

  it('refuses a resource with a fragment and a relative metadata URL at construction', () => {
    const verifier = fixedVerifier({ active: false });
    assert.throws(() => protectResource({ resource: `${RESOURCE}#x`, verifier }), /resource/);
    assert.throws(
      () => protectResource({ resource: RESOURCE, resourceMetadataUrl: '/.well-known/x', verifier }),
      /resourceMetadataUrl/,
    );
  });

  it('omits the scope parameter when no scope is required', async () => {
    const p = protectResource({ resource: RESOURCE, verifier: fixedVerifier({ active: false }) });
    const r = await p.authenticate(undefined);
    assert.ok(!r.ok);
    assert.equal(
      r.challenge.headers['www-authenticate'],
      'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"',
    );
  });

  it('names every required scope in insufficient_scope, not only the missing ones (MCP step-up)', async () => {
    const p = protectResource({
      resource: RESOURCE,
      requiredScopes: ['mcp', 'files:read'],
      verifier: fixedVerifier(active({ scopes: ['mcp'] })),
    });
    const r = await p.authenticate('Bearer abc');
    assert.ok(!r.ok);
    assert.equal(r.challenge.status, 403);
    assert.match(
      r.challenge.headers['www-authenticate'] ?? '',
      /scope="mcp files:read", error="insufficient_scope"/,
    );
  });

  it('answers 503 and reports the error when the verifier throws', async () => {
    const seen: unknown[] = [];
    const p = protectResource({
      resource: RESOURCE,
      verifier: fixedVerifier(new Error('boom')),
      onError: (err) => seen.push(err),
    });
    const r = await p.authenticate('Bearer abc');
    assert.ok(!r.ok);
    assert.equal(r.challenge.status, 503);
    assert.equal(r.challenge.headers['retry-after'], '5');
    assert.equal(seen.length, 1);
  });

  it('refuses an oversized token without asking the verifier', async () => {
    let asked = false;
    const p = protectResource({
      resource: RESOURCE,
      verifier: {
        verify: async () => {
          asked = true;
          return active();
        },
      },
    });
    const r = await p.authenticate(`Bearer ${'a'.repeat(5000)}`);
    assert.ok(!r.ok);
    assert.equal(r.challenge.status, 401);
    assert.equal(asked, false);
  });
});

describe('protected resource metadata (RFC 9728)', () => {
  it('lives at the path-suffixed and the root location for a resource with a path (RFC 9728 §3.1)', () => {
    assert.deepEqual(protectedResourceMetadataPaths(RESOURCE), [
      '/.well-known/oauth-protected-resource/mcp',
      '/.well-known/oauth-protected-resource',
    ]);
  });

  it('lives only at the root location for a host-only resource', () => {
    assert.deepEqual(protectedResourceMetadataPaths('https://mcp.example.com/'), [
      '/.well-known/oauth-protected-resource',
    ]);
    assert.equal(
      protectedResourceMetadataUrl('https://mcp.example.com'),
      'https://mcp.example.com/.well-known/oauth-protected-resource',
    );
  });

  it('names the issuer verbatim as the only authorization server and bearer in the header only (RFC 9728 §2)', () => {
    assert.deepEqual(
      createProtectedResourceMetadata({
        resource: RESOURCE,
        issuer: 'https://auth.example.com',
        scopesSupported: ['mcp'],
        resourceName: 'Example',
      }),
      {
        resource: RESOURCE,
        authorization_servers: ['https://auth.example.com'],
        scopes_supported: ['mcp'],
        bearer_methods_supported: ['header'],
        resource_name: 'Example',
      },
    );
  });
});
