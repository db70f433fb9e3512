// Client metadata shared by dynamic registration (RFC 7591 §2) and Client ID Metadata Documents.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ClientMetadataPolicy,
  MAX_REDIRECT_URIS,
  validateClientMetadata,
} from '../../src/oauth/client-metadata.ts';
import { OAuthError } from '../../src/oauth/errors.ts';

const registration: ClientMetadataPolicy = {
  source: 'registration',
  supportedScopes: ['mcp', 'offline_access'],
};
const cimd: ClientMetadataPolicy = { ...registration, source: 'cimd' };

const CLAUDE = {
  redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
  token_endpoint_auth_method: 'client_secret_post',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  client_name: 'Claude',
};

function problem(input: unknown, policy: ClientMetadataPolicy = registration): OAuthError {
  try {
    validateClientMetadata(input, policy);
  } catch (err) {
    assert.ok(err instanceof OAuthError, `expected an OAuthError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the metadata to be refused');
}

describe('client metadata (RFC 7591 §2)', () => {
  it("accepts Claude's registration body as sent", () => {
    assert.deepEqual(validateClientMetadata(CLAUDE, registration), {
      name: 'Claude',
      redirectUris: ['https://claude.ai/api/mcp/auth_callback'],
      grantTypes: ['authorization_code', 'refresh_token'],
      responseTypes: ['code'],
      tokenEndpointAuthMethod: 'client_secret_post',
    });
  });

  it('defaults to a public client using the authorization_code grant and code response type (§2)', () => {
    const m = validateClientMetadata({ redirect_uris: ['http://127.0.0.1:3334/callback'] }, registration);
    assert.equal(m.tokenEndpointAuthMethod, 'none');
    assert.deepEqual(m.grantTypes, ['authorization_code']);
    assert.deepEqual(m.responseTypes, ['code']);
  });

  it('names a registered client after the host of its first redirect URI when client_name is missing', () => {
    assert.equal(
      validateClientMetadata({ redirect_uris: ['https://app.example/cb'] }, registration).name,
      'app.example',
    );
    assert.equal(
      validateClientMetadata({ redirect_uris: ['https://app.example/cb'], client_name: '  ' }, registration)
        .name,
      'app.example',
    );
  });

  it('ignores fields it does not understand (§2)', () => {
    const m = validateClientMetadata(
      { ...CLAUDE, software_id: 'x', jwks: { keys: [] }, 'client_name#ja': 'クロード' },
      registration,
    );
    assert.equal(m.name, 'Claude');
    assert.ok(!('software_id' in m));
  });

  it('reads null optional fields as omitted', () => {
    const m = validateClientMetadata(
      {
        redirect_uris: ['https://app.example/cb'],
        scope: null,
        logo_uri: null,
        token_endpoint_auth_method: null,
      },
      registration,
    );
    assert.equal(m.tokenEndpointAuthMethod, 'none');
    assert.equal(m.scope, undefined);
  });

  it('keeps supported scopes and drops unknown ones (§3.2.1 lets the server replace values)', () => {
    const m = validateClientMetadata({ ...CLAUDE, scope: 'mcp other:read mcp offline_access' }, registration);
    assert.equal(m.scope, 'mcp offline_access');
    assert.equal(validateClientMetadata({ ...CLAUDE, scope: 'other' }, registration).scope, undefined);
  });

  it('keeps https client_uri and logo_uri', () => {
    const m = validateClientMetadata(
      { ...CLAUDE, client_uri: 'https://claude.ai', logo_uri: 'https://claude.ai/logo.png' },
      registration,
    );
    assert.equal(m.clientUri, 'https://claude.ai');
    assert.equal(m.logoUri, 'https://claude.ai/logo.png');
  });

  it('accepts loopback http redirect URIs and removes duplicates', () => {
    const m = validateClientMetadata(
      { redirect_uris: ['http://localhost/callback', 'http://[::1]:8080/cb', 'http://localhost/callback'] },
      registration,
    );
    assert.deepEqual(m.redirectUris, ['http://localhost/callback', 'http://[::1]:8080/cb']);
  });

  describe('refuses bad redirect URIs with invalid_redirect_uri', () => {
    const cases: [string, unknown, RegExp][] = [
      ['missing redirect_uris', undefined, /redirect_uris is required/],
      ['an empty list', [], /non-empty array/],
      ['a string instead of a list', 'https://app.example/cb', /non-empty array/],
      ['a non-string entry', [42], /redirect_uris\[0\] must be a string/],
      ['http on a non-loopback host (RFC 8252 §8.3)', ['http://app.example/cb'], /must use https/],
      ['a fragment (RFC 6749 §3.1.2)', ['https://app.example/cb#x'], /fragment/],
      ['a relative URI (RFC 6749 §3.1.2)', ['/callback'], /absolute/],
      ['a wildcard', ['https://*.app.example/cb'], /wildcards/],
      ['userinfo', ['https://user:pw@app.example/cb'], /credentials/],
      ['a custom scheme', ['com.example.app:/cb'], /must use https/],
      [
        'a second URI that is bad',
        ['https://app.example/cb', 'http://evil.example/cb'],
        /redirect_uris\[1\]/,
      ],
      [
        `more than ${MAX_REDIRECT_URIS} URIs`,
        Array.from({ length: 21 }, (_, i) => `https://a.example/${i}`),
        /at most/,
      ],
    ];
    for (const [what, uris, pattern] of cases) {
      it(`refuses ${what}`, () => {
        const err = problem({ ...CLAUDE, redirect_uris: uris });
        assert.equal(err.code, 'invalid_redirect_uri');
        assert.equal(err.status, 400);
        assert.match(err.description, pattern);
      });
    }
  });

  it('enforces the operator allow-list of redirect URI patterns', () => {
    const policy = {
      ...registration,
      allowedRedirectUriPatterns: [/^https:\/\/claude\.ai\/api\/mcp\/[^/?#]*$/],
    };
    assert.ok(validateClientMetadata(CLAUDE, policy));
    const err = problem({ ...CLAUDE, redirect_uris: ['https://evil.example/cb'] }, policy);
    assert.equal(err.code, 'invalid_redirect_uri');
    assert.match(err.description, /redirect URI policy/);
  });

  describe('refuses other bad metadata with invalid_client_metadata', () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [
        'the implicit grant',
        { grant_types: ['authorization_code', 'implicit'] },
        /only contain authorization_code/,
      ],
      ['client_credentials', { grant_types: ['client_credentials'] }, /only contain authorization_code/],
      [
        'grant_types without authorization_code',
        { grant_types: ['refresh_token'] },
        /must include authorization_code/,
      ],
      ['grant_types that is not a list', { grant_types: 'authorization_code' }, /array of strings/],
      ['the token response type', { response_types: ['code', 'token'] }, /only contain code/],
      [
        'response_types inconsistent with grant_types (§2.1)',
        { grant_types: ['authorization_code'], response_types: [] },
        /inconsistent/,
      ],
      ['an unsupported auth method', { token_endpoint_auth_method: 'private_key_jwt' }, /must be one of/],
      ['a non-string client_name', { client_name: 7 }, /client_name must be a string/],
      ['an overlong client_name', { client_name: 'x'.repeat(201) }, /at most 200/],
      ['a client_name with a bidi override', { client_name: 'Claude\u202Eevil' }, /bidirectional/],
      ['a malformed scope', { scope: 'mcp "quoted"' }, /scope tokens/],
      ['a scope that is not a string', { scope: ['mcp'] }, /space-separated string/],
      ['an http logo_uri', { logo_uri: 'http://claude.ai/logo.png' }, /logo_uri must be an https URL/],
      ['a client_uri that is not a URL', { client_uri: 'claude' }, /client_uri must be an https URL/],
    ];
    for (const [what, fields, pattern] of cases) {
      it(`refuses ${what}`, () => {
        const err = problem({ ...CLAUDE, ...fields });
        assert.equal(err.code, 'invalid_client_metadata');
        assert.match(err.description, pattern);
      });
    }

    it('refuses a body that is not a JSON object', () => {
      for (const body of [null, [], 'x', 3]) {
        assert.equal(problem(body).code, 'invalid_client_metadata');
      }
    });
  });

  it('requires client_name in a Client ID Metadata Document', () => {
    const err = problem({ redirect_uris: ['https://app.example/cb'] }, cimd);
    assert.equal(err.code, 'invalid_client_metadata');
    assert.match(err.description, /client_name is required/);
  });

  it('never echoes client-supplied values in descriptions (RFC 6749 §5.2 character set)', () => {
    const err = problem({ ...CLAUDE, redirect_uris: ['http://"evil"\\.example/cb'] });
    assert.doesNotMatch(err.description, /["\\]/);
  });
});
