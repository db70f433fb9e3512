// Table-driven tests of the pure rules under the endpoints: redirect URIs, PKCE, request parameters, Basic
// credentials, scopes and resource indicators. One row a case, named after the RFC section it holds the code to.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ResourceServer } from '../../src/generated/prisma/client.ts';
import { type BasicCredentials, parseBasicAuth } from '../../src/oauth/client-auth.ts';
import { newClientId } from '../../src/oauth/client-registration.ts';
import { OAuthError } from '../../src/oauth/errors.ts';
import { Params, type RawParams } from '../../src/oauth/params.ts';
import {
  calculateS256Challenge,
  isValidCodeVerifier,
  isValidS256Challenge,
  verifyPkce,
} from '../../src/oauth/pkce.ts';
import { isLoopbackHost, matchRedirectUri, redirectUriProblem } from '../../src/oauth/redirect-uri.ts';
import { normalizeResource, resolveResource } from '../../src/oauth/resources.ts';
import { formatScope, isSubset, parseScope, resolveRequestedScopes } from '../../src/oauth/scopes.ts';
import { audienceIncludes, requireResource } from '../../src/resource-server/resource.ts';
import type { ResourceServerStore } from '../../src/store/resource-servers.ts';
import { basicAuth, basicCredentials } from '../helpers/basic-auth.ts';

/** A row of a table: a name, and `todo` (with the reason) for a case the code does not yet meet. */
interface Row {
  name: string;
  todo?: string;
}

/** One `it` per row; a row with `todo` is reported as a known gap instead of failing the run. */
function table<R extends Row>(rows: readonly R[], check: (row: R) => void | Promise<void>): void {
  for (const row of rows) it(row.name, row.todo ? { todo: row.todo } : {}, () => check(row));
}

/** Asserts that `fn` throws an OAuthError with `code`. */
function throwsOAuth(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof OAuthError && err.code === code);
}

describe('redirect URI registration (src/oauth/redirect-uri.ts)', () => {
  table<Row & { uri: string; problem: RegExp | undefined }>(
    [
      { name: 'accepts an https URI', uri: 'https://app.example.com/callback', problem: undefined },
      {
        name: 'accepts an https URI with a query (RFC 6749 §3.1.2)',
        uri: 'https://app.example.com/cb?x=1',
        problem: undefined,
      },
      { name: 'RFC 8252 §7.3 accepts http on 127.0.0.1', uri: 'http://127.0.0.1/cb', problem: undefined },
      {
        name: 'RFC 8252 §7.3 accepts http on [::1] with a port',
        uri: 'http://[::1]:8080/cb',
        problem: undefined,
      },
      {
        name: 'RFC 8252 §8.3 accepts http on localhost',
        uri: 'http://localhost:3000/cb',
        problem: undefined,
      },
      { name: 'accepts a loopback host in capitals', uri: 'http://LOCALHOST/cb', problem: undefined },
      {
        name: 'RFC 8252 §8.3 refuses http on a host that is not loopback',
        uri: 'http://app.example.com/cb',
        problem: /must use https/,
      },
      {
        name: 'refuses http on a name that only starts like localhost',
        uri: 'http://localhost.example.com/cb',
        problem: /must use https/,
      },
      {
        name: 'RFC 6749 §3.1.2 refuses a fragment',
        uri: 'https://app.example.com/cb#frag',
        problem: /fragment/,
      },
      { name: 'refuses an empty fragment', uri: 'https://app.example.com/cb#', problem: /fragment/ },
      { name: 'refuses a wildcard', uri: 'https://*.example.com/cb', problem: /wildcards/ },
      { name: 'RFC 6749 §3.1.2 refuses a relative URI', uri: '/callback', problem: /absolute/ },
      { name: 'refuses an empty string', uri: '', problem: /non-empty/ },
      { name: 'refuses userinfo', uri: 'https://user:pw@app.example.com/cb', problem: /credentials/ },
      { name: 'refuses a user name alone', uri: 'https://user@app.example.com/cb', problem: /credentials/ },
      {
        name: 'refuses another scheme',
        uri: 'ftp://app.example.com/cb',
        problem: /https \(or http on loopback\)/,
      },
      {
        name: 'refuses a private-use scheme (RFC 8252 §7.1 is not supported)',
        uri: 'com.example.app:/cb',
        problem: /https \(or http on loopback\)/,
      },
      {
        name: 'refuses a URI over 2000 characters',
        uri: `https://a.example/${'x'.repeat(2000)}`,
        problem: /too long/,
      },
    ],
    ({ uri, problem }) => {
      const said = redirectUriProblem(uri);
      if (problem === undefined) assert.equal(said, undefined);
      else assert.match(said ?? '', problem);
    },
  );
});

describe('redirect URI matching (src/oauth/redirect-uri.ts)', () => {
  table<Row & { requested: string; registered: string[]; match: string | undefined }>(
    [
      {
        name: 'OAuth 2.1 §4.1.1 matches the exact string',
        requested: 'https://app.example.com/cb',
        registered: ['https://app.example.com/cb'],
        match: 'https://app.example.com/cb',
      },
      {
        name: 'RFC 9700 §4.1.3 refuses a longer path (no prefix matching)',
        requested: 'https://app.example.com/cb/more',
        registered: ['https://app.example.com/cb'],
        match: undefined,
      },
      {
        name: 'RFC 9700 §4.1.3 refuses an added query',
        requested: 'https://app.example.com/cb?x=1',
        registered: ['https://app.example.com/cb'],
        match: undefined,
      },
      {
        name: 'refuses a different case in the path',
        requested: 'https://app.example.com/CB',
        registered: ['https://app.example.com/cb'],
        match: undefined,
      },
      {
        name: 'refuses a different https port (only loopback ports are ignored)',
        requested: 'https://app.example.com:8443/cb',
        registered: ['https://app.example.com/cb'],
        match: undefined,
      },
      {
        name: 'RFC 8252 §7.3 loopback port ignored (registered without a port)',
        requested: 'http://127.0.0.1:51004/cb',
        registered: ['http://127.0.0.1/cb'],
        match: 'http://127.0.0.1/cb',
      },
      {
        name: 'RFC 8252 §7.3 loopback port ignored (registered with another port)',
        requested: 'http://localhost:4000/cb',
        registered: ['http://localhost:3000/cb'],
        match: 'http://localhost:3000/cb',
      },
      {
        name: 'RFC 8252 §7.3 loopback port ignored on [::1]',
        requested: 'http://[::1]:61000/cb?x=1',
        registered: ['http://[::1]/cb?x=1'],
        match: 'http://[::1]/cb?x=1',
      },
      {
        name: 'RFC 8252 §7.3 a loopback match still needs the same path',
        requested: 'http://127.0.0.1:51004/other',
        registered: ['http://127.0.0.1/cb'],
        match: undefined,
      },
      {
        name: 'RFC 8252 §7.3 a loopback match still needs the same host',
        requested: 'http://localhost:51004/cb',
        registered: ['http://127.0.0.1/cb'],
        match: undefined,
      },
      {
        name: 'RFC 8252 §7.3 ignores the port for http only, not https on loopback',
        requested: 'https://127.0.0.1:51004/cb',
        registered: ['https://127.0.0.1/cb'],
        match: undefined,
      },
      {
        name: 'refuses a loopback URI with a fragment',
        requested: 'http://127.0.0.1:5/cb#x',
        registered: ['http://127.0.0.1/cb'],
        match: undefined,
      },
      {
        name: 'refuses loopback userinfo smuggled before the host',
        requested: 'http://user@127.0.0.1:5/cb',
        registered: ['http://127.0.0.1/cb'],
        match: undefined,
      },
      {
        name: 'refuses a string that is not a URI',
        requested: 'not a uri',
        registered: ['http://127.0.0.1/cb'],
        match: undefined,
      },
      {
        name: 'returns the registered URI that matched among several',
        requested: 'http://127.0.0.1:9/b',
        registered: ['https://app.example.com/a', 'not a uri', 'http://127.0.0.1/a', 'http://127.0.0.1:7/b'],
        match: 'http://127.0.0.1:7/b',
      },
      {
        name: 'matches nothing when nothing is registered',
        requested: 'https://a.example/cb',
        registered: [],
        match: undefined,
      },
    ],
    ({ requested, registered, match }) => assert.equal(matchRedirectUri(requested, registered), match),
  );

  table<Row & { host: string; loopback: boolean }>(
    [
      { name: 'RFC 8252 §7.3 127.0.0.1 is loopback', host: '127.0.0.1', loopback: true },
      { name: 'RFC 8252 §7.3 [::1] is loopback', host: '[::1]', loopback: true },
      { name: 'RFC 8252 §8.3 localhost is loopback, in any case', host: 'LocalHost', loopback: true },
      { name: 'another address in 127/8 is not taken as loopback', host: '127.0.0.2', loopback: false },
      { name: 'a public name is not loopback', host: 'example.com', loopback: false },
    ],
    ({ host, loopback }) => assert.equal(isLoopbackHost(host), loopback),
  );
});

describe('PKCE (src/oauth/pkce.ts)', () => {
  const APPENDIX_B_VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
  const APPENDIX_B_CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

  table<Row & { verifier: string; challenge: string; verifies: boolean }>(
    [
      {
        name: 'RFC 7636 Appendix B S256 vector verifies',
        verifier: APPENDIX_B_VERIFIER,
        challenge: APPENDIX_B_CHALLENGE,
        verifies: true,
      },
      {
        name: 'RFC 7636 §4.6 a different verifier does not verify',
        verifier: `${APPENDIX_B_VERIFIER.slice(0, -1)}Y`,
        challenge: APPENDIX_B_CHALLENGE,
        verifies: false,
      },
      {
        name: 'RFC 7636 §4.2 plain (challenge equal to the verifier) is refused',
        verifier: APPENDIX_B_VERIFIER,
        challenge: APPENDIX_B_VERIFIER,
        verifies: false,
      },
      {
        name: 'RFC 7636 §4.1 a 42-character verifier does not verify, even with its own challenge',
        verifier: 'a'.repeat(42),
        challenge: calculateS256Challenge('a'.repeat(42)),
        verifies: false,
      },
      {
        name: 'RFC 7636 §4.1 a 128-character verifier verifies',
        verifier: '~'.repeat(128),
        challenge: calculateS256Challenge('~'.repeat(128)),
        verifies: true,
      },
      {
        name: 'RFC 7636 §4.1 a 129-character verifier does not verify',
        verifier: 'a'.repeat(129),
        challenge: calculateS256Challenge('a'.repeat(129)),
        verifies: false,
      },
      {
        name: 'a challenge with padding does not verify',
        verifier: APPENDIX_B_VERIFIER,
        challenge: `${APPENDIX_B_CHALLENGE}=`,
        verifies: false,
      },
    ],
    ({ verifier, challenge, verifies }) => assert.equal(verifyPkce(verifier, challenge), verifies),
  );

  it('RFC 7636 Appendix B computes the S256 challenge of the example verifier', () => {
    assert.equal(calculateS256Challenge(APPENDIX_B_VERIFIER), APPENDIX_B_CHALLENGE);
  });

  table<Row & { verifier: string; valid: boolean }>(
    [
      {
        name: 'RFC 7636 §4.1 43 unreserved characters is the shortest verifier',
        verifier: 'a'.repeat(43),
        valid: true,
      },
      {
        name: 'RFC 7636 §4.1 all four unreserved marks are allowed',
        verifier: `${'A0'.repeat(20)}-._~`,
        valid: true,
      },
      { name: 'RFC 7636 §4.1 42 characters is too short', verifier: 'a'.repeat(42), valid: false },
      { name: 'RFC 7636 §4.1 129 characters is too long', verifier: 'a'.repeat(129), valid: false },
      { name: 'RFC 7636 §4.1 "+" is not unreserved', verifier: `${'a'.repeat(42)}+`, valid: false },
      { name: 'RFC 7636 §4.1 "/" is not unreserved', verifier: `${'a'.repeat(42)}/`, valid: false },
      { name: 'RFC 7636 §4.1 a space is not unreserved', verifier: `${'a'.repeat(42)} `, valid: false },
      {
        name: 'RFC 7636 §4.1 a non-ASCII letter is not unreserved',
        verifier: `${'a'.repeat(42)}é`,
        valid: false,
      },
    ],
    ({ verifier, valid }) => assert.equal(isValidCodeVerifier(verifier), valid),
  );

  table<Row & { challenge: string; valid: boolean }>(
    [
      {
        name: 'RFC 7636 §4.2 the Appendix B challenge is well formed',
        challenge: APPENDIX_B_CHALLENGE,
        valid: true,
      },
      {
        name: 'RFC 7636 §4.2 42 characters is not a SHA-256 digest',
        challenge: APPENDIX_B_CHALLENGE.slice(1),
        valid: false,
      },
      {
        name: 'RFC 7636 §4.2 44 characters is not a SHA-256 digest',
        challenge: `${APPENDIX_B_CHALLENGE}A`,
        valid: false,
      },
      {
        name: 'RFC 7636 §4.2 base64 (not base64url) characters are refused',
        challenge: `+/${APPENDIX_B_CHALLENGE.slice(2)}`,
        valid: false,
      },
      {
        name: 'RFC 7636 §4.2 padding is refused',
        challenge: `${APPENDIX_B_CHALLENGE.slice(1)}=`,
        valid: false,
      },
    ],
    ({ challenge, valid }) => assert.equal(isValidS256Challenge(challenge), valid),
  );
});

describe('request parameters (src/lib/params.ts)', () => {
  table<Row & { raw: RawParams; name_: string; value: string | undefined | 'invalid_request' }>(
    [
      { name: 'reads a single value', raw: { state: 'xyz' }, name_: 'state', value: 'xyz' },
      { name: 'reads an absent parameter as undefined', raw: {}, name_: 'state', value: undefined },
      {
        name: 'RFC 6749 §3.1 an empty value is treated as omitted',
        raw: { state: '' },
        name_: 'state',
        value: undefined,
      },
      {
        name: 'RFC 6749 §3.1 an empty value in a list of one is treated as omitted',
        raw: { state: [''] },
        name_: 'state',
        value: undefined,
      },
      { name: 'reads a list of one as its value', raw: { state: ['xyz'] }, name_: 'state', value: 'xyz' },
      {
        name: 'RFC 6749 §3.1 duplicated params are invalid_request',
        raw: { state: ['a', 'b'] },
        name_: 'state',
        value: 'invalid_request',
      },
      {
        name: 'RFC 6749 §3.1 a parameter repeated with the same value is still invalid_request',
        raw: { state: ['a', 'a'] },
        name_: 'state',
        value: 'invalid_request',
      },
      {
        name: 'RFC 6749 §3.1 a repeated empty parameter is still invalid_request',
        raw: { state: ['', ''] },
        name_: 'state',
        value: 'invalid_request',
      },
    ],
    ({ raw, name_, value }) => {
      const params = new Params(raw);
      if (value === 'invalid_request') throwsOAuth(() => params.get(name_), 'invalid_request');
      else assert.equal(params.get(name_), value);
    },
  );

  table<Row & { raw: RawParams; value: string | 'invalid_request' }>(
    [
      { name: 'require returns a present value', raw: { code: 'c' }, value: 'c' },
      {
        name: 'RFC 6749 §3.1 require refuses an empty value as missing',
        raw: { code: '' },
        value: 'invalid_request',
      },
      { name: 'require refuses an absent value', raw: {}, value: 'invalid_request' },
    ],
    ({ raw, value }) => {
      const params = new Params(raw);
      if (value === 'invalid_request') throwsOAuth(() => params.require('code'), 'invalid_request');
      else assert.equal(params.require('code'), value);
    },
  );

  table<Row & { raw: RawParams; all: string[] }>(
    [
      {
        name: 'RFC 8707 §2 all reads a repeated resource in order',
        raw: { resource: ['https://a', 'https://b'] },
        all: ['https://a', 'https://b'],
      },
      {
        name: 'RFC 8707 §2 all reads a single resource as a list of one',
        raw: { resource: 'https://a' },
        all: ['https://a'],
      },
      {
        name: 'RFC 6749 §3.1 all drops empty values',
        raw: { resource: ['', 'https://a', ''] },
        all: ['https://a'],
      },
      { name: 'all reads an absent parameter as an empty list', raw: {}, all: [] },
    ],
    ({ raw, all }) => assert.deepEqual(new Params(raw).all('resource'), all),
  );

  table<Row & { raw: RawParams; allow: string[]; duplicate: string | undefined }>(
    [
      {
        name: 'RFC 6749 §3.1 names the first duplicated parameter',
        raw: { a: '1', b: ['1', '2'], c: ['1', '2'] },
        allow: [],
        duplicate: 'b',
      },
      {
        name: 'RFC 8707 §2 a repeat that is allowed is not reported',
        raw: { resource: ['x', 'y'], scope: 'mcp' },
        allow: ['resource'],
        duplicate: undefined,
      },
      {
        name: 'RFC 6749 §3.1 a parameter not allowed to repeat is reported next to one that is',
        raw: { resource: ['x', 'y'], state: ['s', 't'] },
        allow: ['resource'],
        duplicate: 'state',
      },
      {
        name: 'reports nothing when nothing repeats',
        raw: { a: '1', b: ['1'] },
        allow: [],
        duplicate: undefined,
      },
    ],
    ({ raw, allow, duplicate }) => assert.equal(new Params(raw).firstDuplicate(allow), duplicate),
  );

  table<Row & { value: unknown; ok: boolean }>(
    [
      { name: 'from accepts a parsed form body', value: { a: '1' }, ok: true },
      { name: 'from treats a missing body as no parameters', value: undefined, ok: true },
      { name: 'from treats a null body as no parameters', value: null, ok: true },
      { name: 'from refuses a body that is not form-encoded (a string)', value: 'a=1', ok: false },
      { name: 'from refuses a body that is not form-encoded (a number)', value: 1, ok: false },
    ],
    ({ value, ok }) => {
      if (ok) assert.ok(Params.from(value) instanceof Params);
      else throwsOAuth(() => Params.from(value), 'invalid_request');
    },
  );
});

describe('Basic client credentials (parseBasicAuth in src/oauth/client-auth.ts)', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  table<Row & { header: string | undefined; parsed: BasicCredentials | undefined | 'malformed' }>(
    [
      {
        name: 'reads an id and a secret',
        header: `Basic ${b64('client:secret')}`,
        parsed: { id: 'client', secret: 'secret' },
      },
      {
        name: 'RFC 7235 §2.1 the scheme is case-insensitive',
        header: `bAsIc ${b64('client:secret')}`,
        parsed: { id: 'client', secret: 'secret' },
      },
      {
        name: 'RFC 6749 §2.3.1 form-encoded Basic credentials are decoded',
        header: basicAuth('id with space:and colon', 'p@ss+word%/é'),
        parsed: { id: 'id with space:and colon', secret: 'p@ss+word%/é' },
      },
      {
        name: 'RFC 6749 §2.3.1 "+" decodes to a space',
        header: `Basic ${b64('a+b:c+d')}`,
        parsed: { id: 'a b', secret: 'c d' },
      },
      {
        name: 'RFC 6749 §2.3.1 "%2B" decodes to "+"',
        header: `Basic ${b64('a%2Bb:c%2Bd')}`,
        parsed: { id: 'a+b', secret: 'c+d' },
      },
      {
        name: 'RFC 7617 §2 the secret runs to the end and may hold a raw ":"',
        header: `Basic ${b64('id:a:b')}`,
        parsed: { id: 'id', secret: 'a:b' },
      },
      {
        name: 'RFC 7617 §2 an empty secret is read as empty',
        header: `Basic ${b64('id:')}`,
        parsed: { id: 'id', secret: '' },
      },
      {
        name: 'RFC 7617 §2 UTF-8 credentials are read as UTF-8',
        header: `Basic ${b64('ïd:sécret')}`,
        parsed: { id: 'ïd', secret: 'sécret' },
      },
      { name: 'no header is no Basic credentials', header: undefined, parsed: undefined },
      { name: 'an empty header is no Basic credentials', header: '', parsed: undefined },
      {
        name: 'RFC 6750 §2.1 a Bearer header is not Basic credentials',
        header: 'Bearer abc',
        parsed: undefined,
      },
      { name: 'RFC 7617 §2 a scheme without credentials is malformed', header: 'Basic', parsed: 'malformed' },
      {
        name: 'RFC 7617 §2 a scheme with an empty value is malformed',
        header: 'Basic ',
        parsed: 'malformed',
      },
      {
        name: 'RFC 7617 §2 credentials without ":" are malformed',
        header: `Basic ${b64('no-colon')}`,
        parsed: 'malformed',
      },
      {
        name: 'RFC 6749 §2.3.1 a broken percent-escape is malformed',
        header: `Basic ${b64('id:%E0%A4%A')}`,
        parsed: 'malformed',
      },
      {
        name: 'a raw control character in the credentials is malformed',
        header: `Basic ${b64('id:sec\u0001ret')}`,
        parsed: 'malformed',
      },
      {
        name: 'a control character that form-decoding yields (%00) is malformed',
        header: `Basic ${b64('id:sec%00ret')}`,
        parsed: 'malformed',
      },
      {
        name: 'unpadded base64 is read',
        header: `Basic ${b64('id:s').replace(/=+$/, '')}`,
        parsed: { id: 'id', secret: 's' },
      },
      {
        name: 'URL-safe base64 (which atob refuses) is read as before',
        header: `Basic ${Buffer.from('a:>>>?').toString('base64url')}`,
        parsed: { id: 'a', secret: '>>>?' },
      },
      {
        name: 'RFC 7617 §2 the value ends at the next space',
        header: `Basic ${b64('client:secret')} more`,
        parsed: { id: 'client', secret: 'secret' },
      },
      {
        name: 'RFC 7617 §2 a second space right after the scheme leaves an empty value: malformed',
        header: `Basic  ${b64('client:secret')}`,
        parsed: 'malformed',
      },
    ],
    ({ header, parsed }) => assert.deepEqual(parseBasicAuth(header), parsed),
  );

  table<Row & { id: string; secret: string; credentials: string }>(
    [
      {
        name: 'RFC 6749 §2.3.1 the test helper leaves URL-safe credentials as they are',
        id: 'client',
        secret: 'secret',
        credentials: b64('client:secret'),
      },
      {
        name: 'RFC 6749 §2.3.1 the test helper form-encodes a space as "+" and ":" as %3A',
        id: 'a b',
        secret: 'c:d',
        credentials: b64('a+b:c%3Ad'),
      },
    ],
    ({ id, secret, credentials }) => assert.equal(basicCredentials(id, secret), credentials),
  );
});

describe('scopes (src/oauth/scopes.ts)', () => {
  table<Row & { scope: string | undefined; parsed: string[] }>(
    [
      { name: 'RFC 6749 §3.3 splits on spaces', scope: 'mcp read', parsed: ['mcp', 'read'] },
      { name: 'RFC 6749 §3.3 order is kept as given', scope: 'read mcp', parsed: ['read', 'mcp'] },
      { name: 'RFC 6749 §3.3 a repeated scope counts once', scope: 'mcp mcp read', parsed: ['mcp', 'read'] },
      { name: 'RFC 6749 §3.3 scopes are case-sensitive', scope: 'mcp MCP', parsed: ['mcp', 'MCP'] },
      { name: 'extra spaces make no empty scope', scope: ' mcp  read ', parsed: ['mcp', 'read'] },
      { name: 'an absent scope is none', scope: undefined, parsed: [] },
      { name: 'an empty scope is none', scope: '', parsed: [] },
    ],
    ({ scope, parsed }) => assert.deepEqual(parseScope(scope), parsed),
  );

  const SUPPORTED = ['mcp', 'read', 'write'];
  table<Row & { requested: string | undefined; granted: string[] | 'invalid_scope' }>(
    [
      {
        name: 'RFC 6749 §3.3 no scope requested grants every supported scope',
        requested: undefined,
        granted: SUPPORTED,
      },
      { name: 'RFC 6749 §3.3 an empty scope is as none requested', requested: '', granted: SUPPORTED },
      {
        name: 'RFC 6749 §3.3 grants the requested ones in the server’s order',
        requested: 'write mcp',
        granted: ['mcp', 'write'],
      },
      {
        name: 'RFC 6749 §3.3 a requested scope repeated is granted once',
        requested: 'read read',
        granted: ['read'],
      },
      {
        name: 'RFC 6749 §5.2 an unsupported scope is invalid_scope',
        requested: 'mcp admin',
        granted: 'invalid_scope',
      },
      {
        name: 'RFC 6749 §5.2 a scope in another case is unsupported',
        requested: 'MCP',
        granted: 'invalid_scope',
      },
    ],
    ({ requested, granted }) => {
      if (granted === 'invalid_scope')
        throwsOAuth(() => resolveRequestedScopes(requested, SUPPORTED), 'invalid_scope');
      else assert.deepEqual(resolveRequestedScopes(requested, SUPPORTED), granted);
    },
  );

  table<Row & { subset: string[]; of: string[]; is: boolean }>(
    [
      {
        name: 'RFC 6749 §6 a narrower refresh scope is a subset',
        subset: ['mcp'],
        of: ['mcp', 'read'],
        is: true,
      },
      {
        name: 'RFC 6749 §6 the same scopes are a subset',
        subset: ['read', 'mcp'],
        of: ['mcp', 'read'],
        is: true,
      },
      { name: 'RFC 6749 §6 no scopes is a subset', subset: [], of: ['mcp'], is: true },
      {
        name: 'RFC 6749 §6 an added scope is not a subset',
        subset: ['mcp', 'write'],
        of: ['mcp', 'read'],
        is: false,
      },
    ],
    ({ subset, of, is }) => assert.equal(isSubset(subset, of), is),
  );

  it('RFC 6749 §3.3 formats scopes space-delimited and parses back to the same list', () => {
    assert.equal(formatScope(['mcp', 'read']), 'mcp read');
    assert.deepEqual(parseScope(formatScope(['mcp', 'read'])), ['mcp', 'read']);
    assert.equal(formatScope([]), '');
  });
});

describe('resource normalisation (src/resource-server/resource.ts, src/oauth/resources.ts)', () => {
  table<Row & { value: string; canonical: string | undefined }>(
    [
      {
        name: 'RFC 8707 trailing slash host-only resource is dropped',
        value: 'https://mcp.example.com/',
        canonical: 'https://mcp.example.com',
      },
      {
        name: 'RFC 8707 §2 a host-only resource without a slash stays',
        value: 'https://mcp.example.com',
        canonical: 'https://mcp.example.com',
      },
      {
        name: 'RFC 8707 §2 a path keeps its trailing slash',
        value: 'https://mcp.example.com/mcp/',
        canonical: 'https://mcp.example.com/mcp/',
      },
      {
        name: 'RFC 3986 §6.2.2.1 scheme and host are lower-cased',
        value: 'HTTPS://MCP.Example.COM/Path',
        canonical: 'https://mcp.example.com/Path',
      },
      {
        name: 'RFC 3986 §6.2.3 the default https port is dropped',
        value: 'https://mcp.example.com:443/mcp',
        canonical: 'https://mcp.example.com/mcp',
      },
      {
        name: 'RFC 3986 §6.2.3 the default http port is dropped',
        value: 'http://127.0.0.1:80/',
        canonical: 'http://127.0.0.1',
      },
      {
        name: 'a port that is not the default stays',
        value: 'http://127.0.0.1:8080/',
        canonical: 'http://127.0.0.1:8080',
      },
      {
        name: 'RFC 3986 §6.2.2.3 dot segments are removed',
        value: 'https://mcp.example.com/a/../mcp',
        canonical: 'https://mcp.example.com/mcp',
      },
      {
        name: 'RFC 8707 §2 a query is kept',
        value: 'https://mcp.example.com/?tenant=a',
        canonical: 'https://mcp.example.com/?tenant=a',
      },
      {
        name: 'RFC 8707 §2 a fragment is refused',
        value: 'https://mcp.example.com/#x',
        canonical: undefined,
      },
      {
        name: 'RFC 8707 §2 an empty fragment is refused',
        value: 'https://mcp.example.com#',
        canonical: undefined,
      },
      { name: 'RFC 8707 §2 a relative URI is refused', value: '/mcp', canonical: undefined },
      { name: 'a scheme other than http(s) is refused', value: 'urn:example:mcp', canonical: undefined },
      { name: 'userinfo is refused', value: 'https://user@mcp.example.com/', canonical: undefined },
      {
        name: 'RFC 3986 §6.2.3 an empty query is kept, so normalising twice changes nothing',
        value: 'https://a.example/?',
        canonical: 'https://a.example/?',
      },
    ],
    ({ value, canonical }) => {
      assert.equal(normalizeResource(value), canonical);
      if (canonical !== undefined) assert.equal(normalizeResource(canonical), canonical, 'idempotent');
    },
  );

  table<Row & { audience: string | string[]; resource: string; includes: boolean }>(
    [
      {
        name: 'RFC 7662 §2.2 a string aud names the resource after normalisation',
        audience: 'https://MCP.example.com/',
        resource: 'https://mcp.example.com',
        includes: true,
      },
      {
        name: 'RFC 7662 §2.2 a list aud names the resource if any entry does',
        audience: ['https://other.example', 'https://mcp.example.com:443'],
        resource: 'https://mcp.example.com/',
        includes: true,
      },
      {
        name: 'RFC 8707 §2 another path is another resource',
        audience: 'https://mcp.example.com/a',
        resource: 'https://mcp.example.com/b',
        includes: false,
      },
      {
        name: 'an unusable resource is never named',
        audience: 'https://mcp.example.com#x',
        resource: 'https://mcp.example.com#x',
        includes: false,
      },
    ],
    ({ audience, resource, includes }) => assert.equal(audienceIncludes(audience, resource), includes),
  );

  it('requireResource names the option when a configured resource is not usable', () => {
    assert.equal(requireResource('https://mcp.example.com/', 'RESOURCE'), 'https://mcp.example.com/');
    assert.throws(
      () => requireResource('https://mcp.example.com/#x', 'RESOURCE'),
      /^TypeError: RESOURCE must be/,
    );
  });

  const rs = (uri: string) => ({ uri, name: uri, clientId: `rs-${uri}` }) as ResourceServer;
  /** The two reads resolveResource makes, over a fixed list (the store's other methods are never called). */
  const store = (uris: string[]) =>
    ({
      list: async () => uris.map(rs),
      findByUri: async (uri: string) => (uris.includes(uri) ? rs(uri) : null),
    }) as unknown as ResourceServerStore;
  table<Row & { requested: string[]; registered: string[]; found: string | 'invalid_target' }>(
    [
      {
        name: 'RFC 8707 §2 finds the registered resource after normalisation',
        requested: ['HTTPS://mcp.example.com/'],
        registered: ['https://mcp.example.com', 'https://b.example'],
        found: 'https://mcp.example.com',
      },
      {
        name: 'RFC 8707 §2 an unknown resource is invalid_target',
        requested: ['https://nope.example'],
        registered: ['https://mcp.example.com'],
        found: 'invalid_target',
      },
      {
        name: 'RFC 8707 §2 more than one resource is invalid_target',
        requested: ['https://mcp.example.com', 'https://b.example'],
        registered: ['https://mcp.example.com', 'https://b.example'],
        found: 'invalid_target',
      },
      {
        name: 'RFC 8707 §2 a resource with a fragment is invalid_target',
        requested: ['https://mcp.example.com#x'],
        registered: ['https://mcp.example.com'],
        found: 'invalid_target',
      },
      {
        name: 'no resource requested means the only one registered',
        requested: [],
        registered: ['https://mcp.example.com'],
        found: 'https://mcp.example.com',
      },
      {
        name: 'no resource requested with several registered is invalid_target',
        requested: [],
        registered: ['https://a.example', 'https://b.example'],
        found: 'invalid_target',
      },
      {
        name: 'no resource requested with none registered is invalid_target',
        requested: [],
        registered: [],
        found: 'invalid_target',
      },
    ],
    async ({ requested, registered, found }) => {
      const resolving = resolveResource(requested, store(registered));
      if (found === 'invalid_target') {
        await assert.rejects(
          resolving,
          (err: unknown) => err instanceof OAuthError && err.code === 'invalid_target',
        );
      } else {
        assert.equal((await resolving).uri, found);
      }
    },
  );
});

describe('client ids (src/oauth/client-registration.ts)', () => {
  it('are 22 base64url characters and never start with "-" (a command line would take one for an option)', () => {
    // One random id in 64 would start with '-'; 4,000 ids all but surely include such draws.
    const ids = Array.from({ length: 4000 }, () => newClientId());
    for (const id of ids) assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    assert.equal(new Set(ids).size, ids.length);
  });
});
