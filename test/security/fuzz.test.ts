// Property-based fuzzing of every endpoint (issue 10, acceptance 1): whatever a client sends — repeated, oversized,
// control-character and non-text parameters, the wrong content type, garbage bodies, Basic headers and
// X-Forwarded-For — the answer is never a 5xx and never a hang; an error is a standard OAuth error JSON (RFC 6749
// §5.2, RFC 7591 §3.2.2) or an HTML page; a redirect goes only to Latchkey itself or a registered redirect URI; and
// no table but the rate-limit counters gains or loses a row. The fixtures make valid values likely enough to reach
// deep into each handler, but never all the values a request would need to succeed and write (no real password,
// client secret, code, refresh token or consent CSRF token is offered).
//
// Bounded: FUZZ_RUNS requests per endpoint (default 40), at most FUZZ_MS per endpoint (default 3,000), each request
// with a 20 s client timeout. Reproduce a failure with FUZZ_SEED=<seed printed in the failure>.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, it } from 'node:test';
import fc from 'fast-check';
import { basicCredentials } from '../helpers/basic-auth.ts';
import { FormBrowser, parseForms } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { CHALLENGE, signedIn } from '../helpers/flow.ts';
import { type RowCounts, rowCounts } from '../helpers/row-counts.ts';
import { addClient, addResourceServer, addUser, startServer, type TestServer } from '../helpers/server.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 40);
const TIME_LIMIT_MS = Number(process.env.FUZZ_MS ?? 3000);
const SEED =
  process.env.FUZZ_SEED === undefined
    ? Date.now() ^ (Math.random() * 2 ** 31)
    : Number(process.env.FUZZ_SEED);
const REQUEST_TIMEOUT_MS = 20_000;

const OAUTH_ERRORS = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'unsupported_response_type',
  'invalid_scope',
  'invalid_target',
  'access_denied',
  'temporarily_unavailable',
  'invalid_redirect_uri',
  'invalid_client_metadata',
  'invalid_token',
  'not_found',
]);

interface Wire {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request over a fresh connection, with a client-side timeout: a hang fails the property. */
function send(base: string, wire: Wire): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(wire.path, base);
    const req = request(
      url,
      {
        method: wire.method,
        headers: { ...wire.headers, connection: 'close' },
        agent: false,
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms (a hang)`)));
    req.on('error', reject);
    req.end(wire.body);
  });
}

// ---- value generators -----------------------------------------------------------------------------------------

const nasty = fc.oneof(
  fc.string({ maxLength: 24 }),
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.constantFrom(
    '',
    '\u0000',
    'a\u0000b',
    '\u001b[31m',
    '%00',
    '%',
    '%zz',
    '\r\nx: y',
    '\ud800',
    '../../etc/passwd',
    'null',
    '[]',
    '{"a":1}',
    'https://evil.example/cb',
    'javascript:alert(1)',
    'x'.repeat(5000),
    'é'.repeat(3000),
  ),
  fc.integer().map(String),
);

/** A value for `name`: often a fixture that gets past the first checks, else anything. */
const valueFor = (fixtures: Record<string, string[]>, name: string) =>
  fixtures[name]?.length ? fc.oneof(fc.constantFrom(...fixtures[name]!), nasty) : nasty;

/** A parameter list (names repeat, values vary) over the endpoint's own names and random ones. */
function paramList(names: string[], fixtures: Record<string, string[]>) {
  const one = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.constantFrom(...names).chain((n) => valueFor(fixtures, n).map((v) => [n, v] as const)),
    },
    { weight: 1, arbitrary: fc.tuple(nasty, nasty) },
  );
  return fc.oneof(
    // Each name once (the usual request, with odd values).
    fc
      .subarray(names)
      .chain((picked) => fc.tuple(...picked.map((n) => valueFor(fixtures, n).map((v) => [n, v] as const)))),
    fc.array(one, { maxLength: 12 }),
  ) as fc.Arbitrary<(readonly [string, string])[]>;
}

const formEncode = (list: readonly (readonly [string, string])[]) => {
  const p = new URLSearchParams();
  for (const [k, v] of list) p.append(k, v);
  return p.toString();
};

/** A body in one of several shapes and content types (most often the right one). */
function bodyOf(list: readonly (readonly [string, string])[], json: boolean) {
  const pairs = Object.fromEntries(list);
  return fc.oneof(
    {
      weight: 5,
      arbitrary: fc.constant({
        type: json ? 'application/json' : 'application/x-www-form-urlencoded',
        body: json ? JSON.stringify(pairs) : formEncode(list),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.constant({
        type: json ? 'application/x-www-form-urlencoded' : 'application/json',
        body: json ? formEncode(list) : JSON.stringify(pairs),
      }),
    },
    {
      weight: 2,
      arbitrary: fc
        .oneof(
          fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
          fc.constantFrom(
            '{"client_id":123}',
            '{"client_id":{"a":1}}',
            '[1,2]',
            '{',
            '"x"',
            '{"redirect_uris":"x"}',
          ),
        )
        .map((body) => ({ type: 'application/json', body })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            'text/plain',
            'multipart/form-data; boundary=x',
            'application/x-www-form-urlencoded; charset=utf-16',
            '',
            'application/json; charset=utf-8',
          ),
          fc.string({ unit: 'binary', maxLength: 200 }),
        )
        .map(([type, body]) => ({ type, body })),
    },
  );
}

/** Extra headers a hostile client may send. */
function headersFor(fixtures: Record<string, string[]>) {
  const printable = fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, ''));
  return fc.record(
    {
      authorization: fc.oneof(
        fc.constantFrom(...(fixtures.basic ?? ['Basic eDp5'])),
        fc
          .tuple(valueFor(fixtures, 'client_id'), nasty)
          .map(([id, secret]) => `Basic ${basicCredentials(id, secret)}`),
        fc.constantFrom(
          'Basic',
          'Basic !!!',
          'Basic YQ==',
          'Bearer',
          'Bearer x y',
          `Basic ${Buffer.from('a\u0000b:x').toString('base64')}`,
        ),
        printable,
      ),
      'x-forwarded-for': fc.oneof(
        fc.constantFrom('203.0.113.7', '::1', '1.1.1.1, 2.2.2.2', 'unknown', '', `${'9.'.repeat(3500)}9`),
        printable,
      ),
      cookie: fc.oneof(fc.constantFrom(...(fixtures.cookie ?? ['x=y'])), printable),
    },
    { requiredKeys: [] },
  );
}

interface Endpoint {
  name: string;
  method: 'GET' | 'POST';
  path: string;
  /** The parameters it reads. */
  names: string[];
  json?: boolean;
}

forEachDatabase('fuzz', (kind) => {
  let server: TestServer;
  let baseline: RowCounts;
  let otherEvents: number;
  const UNCOUNTED = ['rate_limits', 'client_traces', 'audit_events'];
  const eventsOtherThanFailedSignIns = () =>
    server.database.db.prisma.auditEvent.count({
      where: { OR: [{ action: { not: 'sign_in' } }, { outcome: 'success' }] },
    });
  let fixtures: Record<string, string[]>;
  const statuses = new Map<number, number>();

  before(async () => {
    server = await startServer(kind, {
      env: {
        TRUST_PROXY: '1',
        REGISTRATION_RATE_LIMIT: '100000',
        LOGIN_MAX_ATTEMPTS_PER_ADDRESS: '100000',
        LOGIN_MAX_DELAY: '1',
      },
      // Client ID Metadata Document URLs the fuzzer makes up must never reach the network.
      cimd: {
        lookup: async () => {
          throw new Error('no outbound fetches in the fuzz test');
        },
      },
    });
    const pub = await addClient(server.stores, { redirectUris: ['https://app.example.com/callback'] });
    const conf = await addClient(server.stores, {
      authMethod: 'client_secret_basic',
      grantTypes: ['client_credentials'],
    });
    const post = await addClient(server.stores, { authMethod: 'client_secret_post' });
    const rs = await addResourceServer(server.stores, 'https://mcp.example.com');
    const email = await addUser(server.stores, 'owner@example.com');
    // A signed-in browser (its session is a fixture; its consent CSRF token is never offered) and a pre-session.
    const browser = await signedIn(server, email);
    const anonymous = new FormBrowser(server.url);
    const loginPage = await anonymous.request('/login');
    const loginCsrf = parseForms(loginPage.html)[0]!.fields.find((f) => f.name === 'csrf_token')!.value;
    const cookie = (b: FormBrowser) => [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const ids = [
      pub.clientId,
      conf.clientId,
      post.clientId,
      'https://cimd.example.com/client.json',
      'unknown',
    ];
    fixtures = {
      client_id: ids,
      client_secret: ['wrong-secret'],
      redirect_uri: [pub.redirectUri, 'http://127.0.0.1:9/callback', 'https://app.example.com/callback/x'],
      response_type: ['code', 'token'],
      code_challenge: [CHALLENGE, 'short'],
      code_challenge_method: ['S256', 'plain'],
      scope: ['mcp', 'mcp offline_access', 'admin'],
      resource: [rs.uri, `${rs.uri}/`, 'https://other.example.com', 'not a uri'],
      prompt: ['none', 'login', 'consent', 'none login', 'sideways'],
      state: ['state-123'],
      grant_type: ['authorization_code', 'refresh_token', 'client_credentials', 'password', 'urn:x'],
      code: ['lk_code_0000', 'x'],
      code_verifier: ['test-verifier-0123456789-0123456789-0123456789-abcdef', 'short'],
      refresh_token: ['lk_rt_0000', 'x'],
      token: ['lk_at_0000', 'lk_rt_0000', 'x'],
      token_type_hint: ['access_token', 'refresh_token', 'x'],
      email: [email, 'nobody@example.com', 'a\u0000b@example.com'],
      password: ['wrong password', ''],
      csrf_token: [loginCsrf, 'x'],
      return_to: ['/authorize?client_id=x', '//evil.example', 'https://evil.example', '/\\evil'],
      decision: ['approve', 'deny'],
      cookie: [cookie(browser), cookie(anonymous)],
      basic: [
        `Basic ${basicCredentials(conf.clientId, 'wrong')}`,
        `Basic ${basicCredentials(rs.clientId, 'wrong')}`,
      ],
      redirect_uris: [],
    };
    // Client traces record refused requests of known clients by design (README: Client traces), and the audit trail
    // records failed sign-ins (README: Audit trail); nothing else may move.
    baseline = await rowCounts(server.database, UNCOUNTED);
    otherEvents = await eventsOtherThanFailedSignIns();
  });
  after(async () => {
    // The distribution, for the report (what the fuzzer reached).
    console.log(`fuzz [${kind}] seed ${SEED}: statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    await server.close();
  });

  const authorizeNames = [
    'client_id',
    'redirect_uri',
    'response_type',
    'code_challenge',
    'code_challenge_method',
    'state',
    'scope',
    'resource',
    'prompt',
  ];
  const endpoints: Endpoint[] = [
    { name: 'GET /authorize', method: 'GET', path: '/authorize', names: authorizeNames },
    {
      name: 'POST /authorize (consent)',
      method: 'POST',
      path: '/authorize',
      names: [...authorizeNames, 'csrf_token', 'decision'],
    },
    {
      name: 'POST /token (authorization_code)',
      method: 'POST',
      path: '/token',
      names: [
        'grant_type',
        'code',
        'code_verifier',
        'redirect_uri',
        'client_id',
        'client_secret',
        'resource',
      ],
    },
    {
      name: 'POST /token (refresh_token)',
      method: 'POST',
      path: '/token',
      names: ['grant_type', 'refresh_token', 'scope', 'client_id', 'client_secret', 'resource'],
    },
    {
      name: 'POST /token (client_credentials)',
      method: 'POST',
      path: '/token',
      names: ['grant_type', 'scope', 'resource', 'client_id', 'client_secret'],
    },
    {
      name: 'POST /revoke',
      method: 'POST',
      path: '/revoke',
      names: ['token', 'token_type_hint', 'client_id', 'client_secret'],
    },
    {
      name: 'POST /introspect',
      method: 'POST',
      path: '/introspect',
      names: ['token', 'token_type_hint', 'client_id', 'client_secret'],
    },
    {
      name: 'POST /register',
      method: 'POST',
      path: '/register',
      json: true,
      names: [
        'redirect_uris',
        'client_name',
        'grant_types',
        'response_types',
        'token_endpoint_auth_method',
        'scope',
        'client_uri',
        'logo_uri',
        'software_id',
      ],
    },
    { name: 'GET /login', method: 'GET', path: '/login', names: ['return_to'] },
    {
      name: 'POST /login',
      method: 'POST',
      path: '/login',
      names: ['email', 'password', 'csrf_token', 'return_to'],
    },
    {
      name: 'POST /login/upstream/:id',
      method: 'POST',
      path: '/login/upstream/x',
      names: ['csrf_token', 'return_to'],
    },
    { name: 'GET /logout', method: 'GET', path: '/logout', names: [] },
    { name: 'POST /logout', method: 'POST', path: '/logout', names: ['csrf_token'] },
    { name: 'GET /', method: 'GET', path: '/', names: ['return_to'] },
    { name: 'GET metadata', method: 'GET', path: '/.well-known/oauth-authorization-server', names: [] },
    {
      name: 'GET /.well-known/openid-configuration',
      method: 'GET',
      path: '/.well-known/openid-configuration',
      names: [],
    },
    { name: 'GET /healthz', method: 'GET', path: '/healthz', names: [] },
    { name: 'GET /readyz', method: 'GET', path: '/readyz', names: [] },
  ];

  /** Every answer's invariants, and the tables after it. */
  async function check(wire: Wire, answer: Answer): Promise<void> {
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    const what = `${wire.method} ${wire.path.slice(0, 200)} → ${answer.status}: ${answer.body.slice(0, 200)}`;
    assert.ok(answer.status < 500, `never a 5xx: ${what}`);
    const type = String(answer.headers['content-type'] ?? '');
    if (answer.status >= 400) {
      if (type.startsWith('application/json')) {
        const body = JSON.parse(answer.body) as { error?: unknown; error_description?: unknown };
        assert.ok(OAUTH_ERRORS.has(String(body.error)), `a standard error code: ${what}`);
        if (body.error !== 'not_found') assert.equal(typeof body.error_description, 'string', what);
      } else {
        assert.match(type, /^text\/html/, `JSON error or HTML page: ${what}`);
        assert.match(answer.body, /<html/i, what);
      }
    }
    const location = answer.headers.location;
    if (answer.status >= 300 && answer.status < 400 && typeof location === 'string') {
      const target = new URL(location, server.url);
      // Latchkey itself, or a registered redirect URI (loopback ones on any port, RFC 8252 §7.3).
      const registered =
        `${target.origin}${target.pathname}` === 'https://app.example.com/callback' ||
        (target.protocol === 'http:' && target.hostname === '127.0.0.1' && target.pathname === '/callback');
      assert.ok(
        target.origin === new URL(server.url).origin || registered,
        `no open redirect: ${what} → ${location}`,
      );
    }
    assert.deepEqual(await rowCounts(server.database, UNCOUNTED), baseline, `no row changed: ${what}`);
    assert.equal(
      await eventsOtherThanFailedSignIns(),
      otherEvents,
      `no audit event but a failed sign-in: ${what}`,
    );
  }

  for (const endpoint of endpoints) {
    it(`${endpoint.name}: never a 5xx or a hang, always a standard error, nothing written`, async () => {
      const wire = paramList(endpoint.names.length ? endpoint.names : ['x'], fixtures).chain((list) =>
        fc.tuple(
          endpoint.method === 'POST'
            ? bodyOf(list, endpoint.json === true)
            : fc.oneof(
                { weight: 4, arbitrary: fc.constant({ type: '', body: formEncode(list) }) },
                {
                  weight: 1,
                  arbitrary: fc
                    .string({ maxLength: 60 })
                    .map((q) => ({ type: '', body: encodeURI(q).replace(/#/g, '%23') })),
                },
              ),
          headersFor(fixtures),
        ),
      );
      await fc.assert(
        fc.asyncProperty(wire, async ([payload, headers]) => {
          const w: Wire =
            endpoint.method === 'GET'
              ? { method: 'GET', path: `${endpoint.path}?${payload.body}`, headers }
              : {
                  method: 'POST',
                  path: endpoint.path,
                  headers: { ...headers, ...(payload.type ? { 'content-type': payload.type } : {}) },
                  body: Buffer.from(payload.body),
                };
          await check(w, await send(server.url, w));
        }),
        {
          seed: SEED,
          // The failing request is named by the assertion (cut short); the whole counterexample can be megabytes.
          reporter: (details) => {
            if (details.failed) {
              const cause =
                details.errorInstance instanceof Error
                  ? details.errorInstance.message
                  : String(details.error);
              throw new Error(
                `${endpoint.name}: ${cause.slice(0, 2000)}\nreproduce with FUZZ_SEED=${details.seed} (path ${details.counterexamplePath})`,
              );
            }
          },
          numRuns: RUNS,
          interruptAfterTimeLimit: TIME_LIMIT_MS,
          markInterruptAsFailure: false,
          // No shrinking: a failure is reported at once, with the seed and path that reproduce it.
          endOnFailure: true,
        },
      );
    });
  }
});
