// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-01). Documents are served by real
// https and http servers on 127.0.0.1 with a certificate generated here; every other address is reached only
// through an injected resolver and a transport that fails the test if it is ever asked to connect, so no test
// sends a packet anywhere but loopback.
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { ManualClock } from '../../src/lib/clock.ts';
import {
  CIMD_MAX_FRESHNESS,
  CIMD_MIN_FRESHNESS,
  type CimdError,
  cimdClientIdProblem,
  fetchCimdDocument,
  freshnessLifetime,
  isCimdClientId,
  type LookupHost,
  type RequestFunction,
  specialUseRange,
  warnIfCimdLoopbackAllowed,
} from '../../src/oauth/cimd/index.ts';
import { type ClientResolverOptions, createClientResolver } from '../../src/oauth/clients.ts';
import { OAuthError } from '../../src/oauth/errors.ts';
import { createStores } from '../../src/store/index.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/db.ts';
import { generateCertificate } from '../helpers/tls.ts';

// ---------------------------------------------------------------------------------------------------------------
// Helpers

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Serves documents on 127.0.0.1 from a table of path → handler, counting requests per path. */
class DocumentServer {
  readonly routes = new Map<string, Handler>();
  readonly hits = new Map<string, number>();
  private server!: http.Server | https.Server;
  origin = '';

  async start(tls: { key: string; cert: string } | undefined): Promise<void> {
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '').split('?')[0]!;
      this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
      const route = this.routes.get(path);
      if (route) route(req, res);
      else res.writeHead(404).end();
    };
    this.server = tls ? https.createServer(tls, handle) : http.createServer(handle);
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.origin = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Serves `body` (a document for the URL by default) at `path` and returns the URL. */
  serve(path: string, body?: unknown, headers: Record<string, string> = {}): string {
    const url = `${this.origin}${path}`;
    this.routes.set(path, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body ?? documentFor(url)));
    });
    return url;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function documentFor(clientId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    client_id: clientId,
    client_name: 'Test MCP Client',
    redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    ...extra,
  };
}

/** A resolver answering from a fixed table; it records every name asked. */
function fakeLookup(table: Record<string, string[]>): LookupHost & { asked: string[] } {
  const asked: string[] = [];
  const lookup = async (hostname: string) => {
    asked.push(hostname);
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error(`no such host ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({
      address,
      family: address.includes(':') ? (6 as const) : (4 as const),
    }));
  };
  return Object.assign(lookup, { asked });
}

/** A transport that fails the test if a connection is ever attempted. */
function noConnection(): RequestFunction & { calls: number } {
  const fn = Object.assign(
    () => {
      fn.calls++;
      throw new Error('a connection was attempted');
    },
    { calls: 0 },
  );
  return fn as unknown as RequestFunction & { calls: number };
}

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<CimdError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof OAuthError, `expected an OAuthError, got ${String(err)}`);
    assert.equal(err.code, 'invalid_client');
    assert.match(err.description, pattern);
    return err as CimdError;
  }
  assert.fail('expected a rejection');
}

const tls = generateCertificate();
const httpsServer = new DocumentServer();
const httpServer = new DocumentServer();

before(async () => {
  await httpsServer.start(tls);
  await httpServer.start(undefined);
});
after(async () => {
  await httpsServer.stop();
  await httpServer.stop();
});

// ---------------------------------------------------------------------------------------------------------------
// Pure rules

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

// ---------------------------------------------------------------------------------------------------------------
// The SSRF guard refuses before any connection

describe('fetch guards refuse special-use hosts before any connection (draft §6.5)', () => {
  const now = new Date();
  const cases: [string, string][] = [
    ['10.0.0.1', 'private'],
    ['169.254.169.254', 'cloud metadata (link-local)'],
    ['127.0.0.1', 'loopback (flag off)'],
    ['::1', 'IPv6 loopback (flag off)'],
    ['fd00::1', 'unique-local'],
    ['100.64.0.1', 'CGNAT'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['0.0.0.0', 'unspecified'],
    ['192.168.0.10', 'private'],
    ['224.0.0.1', 'multicast'],
  ];
  for (const [address, what] of cases) {
    it(`refuses a host that resolves to ${address} (${what}) without connecting`, async () => {
      const lookup = fakeLookup({ 'docs.example': [address] });
      const transport = noConnection();
      const err = await rejectsWith(
        fetchCimdDocument('https://docs.example/client.json', now, {
          allowLoopback: false,
          lookup,
          request: transport,
        }),
        /special-use address/,
      );
      assert.equal(err.staleUsable, false);
      assert.equal(transport.calls, 0);
      assert.deepEqual(lookup.asked, ['docs.example']);
    });
  }

  it('under CIMD_ALLOW_LOOPBACK still refuses every special-use address but loopback', async () => {
    for (const address of ['10.0.0.1', '169.254.169.254', 'fd00::1', '::ffff:10.0.0.1', '0.0.0.0']) {
      const transport = noConnection();
      await rejectsWith(
        fetchCimdDocument('https://docs.example/client.json', now, {
          allowLoopback: true,
          lookup: fakeLookup({ 'docs.example': [address] }),
          request: transport,
        }),
        /special-use address/,
      );
      assert.equal(transport.calls, 0, address);
    }
  });

  it('refuses a host when any one of its addresses is special-use', async () => {
    const transport = noConnection();
    await rejectsWith(
      fetchCimdDocument('https://docs.example/client.json', now, {
        allowLoopback: false,
        lookup: fakeLookup({ 'docs.example': ['93.184.216.34', '10.0.0.1'] }),
        request: transport,
      }),
      /special-use address/,
    );
    assert.equal(transport.calls, 0);
  });

  for (const id of [
    'https://10.0.0.1/client.json',
    'https://[::1]/client.json',
    'https://[::ffff:127.0.0.1]/client.json',
    'https://169.254.169.254/latest/meta-data',
    'https://0x7f000001/client.json',
  ]) {
    it(`refuses the IP literal client_id ${id} without resolving or connecting`, async () => {
      const lookup = fakeLookup({});
      const transport = noConnection();
      await rejectsWith(
        fetchCimdDocument(id, now, { allowLoopback: false, lookup, request: transport }),
        /special-use address/,
      );
      assert.equal(transport.calls, 0);
      assert.deepEqual(lookup.asked, []);
    });
  }

  it('refuses a host outside CIMD_ALLOWED_HOSTS before resolving it', async () => {
    const lookup = fakeLookup({ 'docs.example': ['93.184.216.34'] });
    const transport = noConnection();
    await rejectsWith(
      fetchCimdDocument('https://docs.example/client.json', now, {
        allowLoopback: false,
        allowedHosts: ['claude.ai', '*.claude.com'],
        lookup,
        request: transport,
      }),
      /allowed CIMD hosts/,
    );
    assert.deepEqual(lookup.asked, []);
    assert.equal(transport.calls, 0);
  });

  it('refuses http even under CIMD_ALLOW_LOOPBACK when the loopback name resolves elsewhere', async () => {
    const transport = noConnection();
    await rejectsWith(
      fetchCimdDocument('http://localhost/client.json', now, {
        allowLoopback: true,
        lookup: fakeLookup({ localhost: ['93.184.216.34'] }),
        request: transport,
      }),
      /must use https/,
    );
    assert.equal(transport.calls, 0);
  });

  it('reports a host that does not resolve as a failure the cache may ride out', async () => {
    const err = await rejectsWith(
      fetchCimdDocument('https://nowhere.example/client.json', now, {
        allowLoopback: false,
        lookup: fakeLookup({}),
        request: noConnection(),
      }),
      /could not be resolved/,
    );
    assert.equal(err.staleUsable, true);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Fetching from real servers on loopback

describe('fetching over https on loopback under CIMD_ALLOW_LOOPBACK (draft §4)', () => {
  const now = new Date();

  it('fetches a document from 127.0.0.1 over https with a trusted certificate', async () => {
    const url = httpsServer.serve('/fetch/ok');
    const r = await fetchCimdDocument(url, now, { allowLoopback: true, ca: tls.cert });
    assert.deepEqual(r.document, documentFor(url));
  });

  it('connects to the address it vetted and never asks the resolver twice (DNS rebinding)', async () => {
    const url = `https://client.test:${httpsServer.port}/fetch/rebind`;
    httpsServer.serve('/fetch/rebind', documentFor(url));
    let answers = 0;
    const rebinding: LookupHost = async () => {
      answers++;
      // A rebinding name answers loopback once, then an internal address.
      return [{ address: answers === 1 ? '127.0.0.1' : '10.0.0.1', family: 4 }];
    };
    const r = await fetchCimdDocument(url, now, { allowLoopback: true, ca: tls.cert, lookup: rebinding });
    assert.equal((r.document as { client_id: string }).client_id, url);
    assert.equal(answers, 1);
  });

  it('refuses a loopback document when CIMD_ALLOW_LOOPBACK is off', async () => {
    const url = httpsServer.serve('/fetch/flag-off');
    const before = httpsServer.hits.get('/fetch/flag-off') ?? 0;
    await rejectsWith(fetchCimdDocument(url, now, { allowLoopback: false, ca: tls.cert }), /special-use/);
    assert.equal(httpsServer.hits.get('/fetch/flag-off') ?? 0, before);
  });

  it('fetches over http on loopback only under CIMD_ALLOW_LOOPBACK', async () => {
    const url = httpServer.serve('/fetch/http');
    const r = await fetchCimdDocument(url, now, { allowLoopback: true });
    assert.deepEqual(r.document, documentFor(url));
    await rejectsWith(fetchCimdDocument(url, now, { allowLoopback: false }), /must use https/);
  });

  it('refuses a certificate it does not trust', async () => {
    const url = httpsServer.serve('/fetch/untrusted');
    const err = await rejectsWith(
      fetchCimdDocument(url, now, { allowLoopback: true }),
      /could not be fetched/,
    );
    assert.match(err.detail ?? '', /SELF_SIGNED|CERT|certificate/i);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The resolver and its database cache

forEachDatabase('CIMD clients resolved through the database cache', (kind) => {
  let t: TestDatabase;
  before(async () => {
    t = await migratedDatabase(kind);
  });
  after(() => t.cleanup());

  const config = { ...loadConfig({}), cimdAllowLoopback: true };
  const resolverFor = (clock: ManualClock, extra: Partial<ClientResolverOptions> = {}) =>
    createClientResolver(createStores(t.db.prisma), {
      config,
      clock,
      ...extra,
      cimd: { ca: tls.cert, ...extra.cimd },
    });
  const rows = () => t.db.prisma.client.count({ where: { kind: 'CIMD' } });
  // Each test gets its own paths so the suites for both databases never share a URL.
  const path = (name: string) => `/${kind}/${name}`;

  it('resolves a valid document into a public CIMD client and stores it (draft §4.1)', async () => {
    const clock = new ManualClock();
    const url = httpsServer.serve(path('valid'), undefined, { 'cache-control': 'max-age=600' });
    const client = await resolverFor(clock).resolve(url);
    assert.equal(client.kind, 'CIMD');
    assert.equal(client.clientId, url);
    assert.equal(client.name, 'Test MCP Client');
    assert.deepEqual(client.redirectUris, ['http://localhost/callback', 'http://127.0.0.1/callback']);
    assert.deepEqual(client.grantTypes, ['authorization_code', 'refresh_token']);
    assert.equal(client.tokenEndpointAuthMethod, 'none');
    assert.equal(client.secretHash, null);
    assert.equal(client.fetchedAt?.getTime(), clock.now().getTime());
    assert.equal(client.freshUntil?.getTime(), clock.now().getTime() + 600_000);
  });

  // Each rejected document or response: invalid_client with a reason, and nothing stored.
  const rejections: [string, (url: string) => Handler | unknown, RegExp][] = [
    [
      'a document whose client_id differs from its URL',
      (url) => documentFor(`${url}/other`),
      /client_id does not match its URL/,
    ],
    [
      'a document whose client_id differs only by a trailing slash',
      (url) => documentFor(`${url}/`),
      /client_id does not match/,
    ],
    [
      'a document without client_name',
      (url) => documentFor(url, { client_name: undefined }),
      /client_name is required/,
    ],
    [
      'a document without redirect_uris',
      (url) => documentFor(url, { redirect_uris: undefined }),
      /redirect_uris is required/,
    ],
    [
      'a document with an http non-loopback redirect URI',
      (url) => documentFor(url, { redirect_uris: ['http://example.com/cb'] }),
      /redirect_uris\[0\]: redirect URI must use https/,
    ],
    [
      'a document asking for client_secret_post',
      (url) => documentFor(url, { token_endpoint_auth_method: 'client_secret_post' }),
      /shared-secret/,
    ],
    [
      'a document asking for client_secret_basic',
      (url) => documentFor(url, { token_endpoint_auth_method: 'client_secret_basic' }),
      /shared-secret/,
    ],
    [
      'a document asking for private_key_jwt',
      (url) => documentFor(url, { token_endpoint_auth_method: 'private_key_jwt' }),
      /token_endpoint_auth_method must be none/,
    ],
    [
      'a document holding a client_secret',
      (url) => documentFor(url, { client_secret: 'shh' }),
      /must not contain client_secret/,
    ],
    [
      'a document holding client_secret_expires_at',
      (url) => documentFor(url, { client_secret_expires_at: 0 }),
      /must not contain client_secret/,
    ],
    ['a document that is not JSON', () => '<html>hello</html>', /not valid JSON/],
    ['a document that is a JSON array', (url) => [documentFor(url)], /must be a JSON object/],
    [
      'a redirect (302), which is not followed',
      () => ((_req, res) => res.writeHead(302, { location: '/elsewhere' }).end()) as Handler,
      /redirects are not followed \(HTTP 302\)/,
    ],
    ['a 404', () => ((_req, res) => res.writeHead(404).end()) as Handler, /HTTP 404/],
    ['a 500', () => ((_req, res) => res.writeHead(500).end()) as Handler, /HTTP 500/],
    ['a 204 (only 200 is accepted)', () => ((_req, res) => res.writeHead(204).end()) as Handler, /HTTP 204/],
    [
      'a document larger than 5 KB (declared length)',
      (url) => documentFor(url, { padding: 'x'.repeat(6000) }),
      /larger than 5120 bytes/,
    ],
    [
      'a document larger than 5 KB streamed without a length',
      (url) =>
        ((_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          const body = JSON.stringify(documentFor(url, { padding: 'x'.repeat(6000) }));
          res.write(body.slice(0, 3000));
          res.write(body.slice(3000));
          res.end();
        }) as Handler,
      /larger than 5120 bytes/,
    ],
  ];
  for (const [what, make, pattern] of rejections) {
    it(`refuses ${what} and stores nothing`, async () => {
      const p = path(`reject-${what.replace(/\W+/g, '-')}`);
      const url = `${httpsServer.origin}${p}`;
      const body = make(url);
      if (typeof body === 'function') httpsServer.routes.set(p, body as Handler);
      else httpsServer.serve(p, body);
      const before = await rows();
      await rejectsWith(resolverFor(new ManualClock()).resolve(url), pattern);
      assert.equal(await rows(), before);
      assert.equal(await t.db.prisma.client.findUnique({ where: { clientId: url } }), null);
    });
  }

  it('refuses a slow server once the time limit passes, and stores nothing', async () => {
    const p = path('slow');
    httpsServer.routes.set(p, () => {
      // Never answers; the server's closeAllConnections() ends it after the tests.
    });
    const url = `${httpsServer.origin}${p}`;
    const started = Date.now();
    await rejectsWith(resolverFor(new ManualClock(), { cimd: { timeoutMs: 300 } }).resolve(url), /timed out/);
    assert.ok(Date.now() - started < 3000);
    assert.equal(await t.db.prisma.client.findUnique({ where: { clientId: url } }), null);
  });

  it('refuses a server that drips its body past the time limit', async () => {
    const p = path('drip');
    const url = `${httpsServer.origin}${p}`;
    httpsServer.routes.set(p, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const body = JSON.stringify(documentFor(url));
      let i = 0;
      const timer = setInterval(() => {
        if (res.destroyed || i >= body.length) return clearInterval(timer);
        res.write(body[i++]);
      }, 50);
    });
    await rejectsWith(resolverFor(new ManualClock(), { cimd: { timeoutMs: 400 } }).resolve(url), /timed out/);
    assert.equal(await t.db.prisma.client.findUnique({ where: { clientId: url } }), null);
  });

  it('serves a document from the cache for its max-age, then fetches it again (draft §4.4)', async () => {
    const clock = new ManualClock();
    const p = path('max-age');
    const url = httpsServer.serve(p, undefined, { 'cache-control': 'max-age=600' });
    const resolver = resolverFor(clock);
    await resolver.resolve(url);
    clock.advance(599);
    await resolver.resolve(url);
    assert.equal(httpsServer.hits.get(p), 1);
    clock.advance(2);
    await resolver.resolve(url);
    assert.equal(httpsServer.hits.get(p), 2);
  });

  it('keeps a document at least a minute even when max-age is shorter', async () => {
    const clock = new ManualClock();
    const p = path('short');
    const url = httpsServer.serve(p, undefined, { 'cache-control': 'max-age=1' });
    const client = await resolverFor(clock).resolve(url);
    assert.equal(client.freshUntil!.getTime() - clock.now().getTime(), CIMD_MIN_FRESHNESS * 1000);
    clock.advance(30);
    await resolverFor(clock).resolve(url);
    assert.equal(httpsServer.hits.get(p), 1);
  });

  it('keeps a document at most a day even when max-age is longer', async () => {
    const clock = new ManualClock();
    const url = httpsServer.serve(path('long'), undefined, { 'cache-control': 'max-age=31536000' });
    const client = await resolverFor(clock).resolve(url);
    assert.equal(client.freshUntil!.getTime() - clock.now().getTime(), CIMD_MAX_FRESHNESS * 1000);
  });

  it('treats no-store as the minimum freshness', async () => {
    const clock = new ManualClock();
    const url = httpsServer.serve(path('no-store'), undefined, { 'cache-control': 'no-store' });
    const client = await resolverFor(clock).resolve(url);
    assert.equal(client.freshUntil!.getTime() - clock.now().getTime(), CIMD_MIN_FRESHNESS * 1000);
  });

  it('never caches a failure: the next request fetches again (draft §4.3)', async () => {
    const clock = new ManualClock();
    const p = path('flaky');
    const url = `${httpsServer.origin}${p}`;
    httpsServer.routes.set(p, (_req, res) => res.writeHead(404).end());
    const resolver = resolverFor(clock);
    await rejectsWith(resolver.resolve(url), /HTTP 404/);
    await rejectsWith(resolver.resolve(url), /HTTP 404/);
    assert.equal(httpsServer.hits.get(p), 2);
    httpsServer.serve(p);
    assert.equal((await resolver.resolve(url)).clientId, url);
    assert.equal(httpsServer.hits.get(p), 3);
  });

  it('serves a recently stale document while its host fails, but not after the bound (RFC 5861)', async () => {
    const clock = new ManualClock();
    const p = path('stale');
    const url = httpsServer.serve(p, undefined, { 'cache-control': 'max-age=600' });
    const warnings: string[] = [];
    const resolver = resolverFor(clock, { log: { warn: (_obj, msg) => warnings.push(msg) } });
    const first = await resolver.resolve(url);
    httpsServer.routes.set(p, (_req, res) => res.writeHead(503).end());
    clock.advance(600 + 3000); // stale for 50 minutes: within the one-hour bound
    assert.equal((await resolver.resolve(url)).id, first.id);
    assert.match(warnings.at(-1) ?? '', /stale-if-error/);
    clock.advance(700); // stale for over an hour
    await rejectsWith(resolver.resolve(url), /HTTP 503/);
    // The row that was valid is kept (grants hang off it); the host coming back refreshes it.
    assert.ok(await t.db.prisma.client.findUnique({ where: { clientId: url } }));
    httpsServer.serve(p, undefined, { 'cache-control': 'max-age=600' });
    const back = await resolver.resolve(url);
    assert.equal(back.freshUntil!.getTime(), clock.now().getTime() + 600_000);
  });

  it('serves a recently stale document while its host name does not resolve', async () => {
    const clock = new ManualClock();
    const p = path('unresolvable');
    const url = `https://client.test:${httpsServer.port}${p}`;
    httpsServer.serve(p, documentFor(url), { 'cache-control': 'max-age=600' });
    const up = resolverFor(clock, { cimd: { lookup: fakeLookup({ 'client.test': ['127.0.0.1'] }) } });
    const first = await up.resolve(url);
    clock.advance(900);
    // The name now resolves nowhere: the host is failing, it has not answered that the document changed.
    const down = resolverFor(clock, { cimd: { lookup: fakeLookup({}) } });
    assert.equal((await down.resolve(url)).id, first.id);
    assert.equal(httpsServer.hits.get(p), 1);
  });

  it('does not serve a stale document when its host answers that it is gone or invalid', async () => {
    const clock = new ManualClock();
    const p = path('gone');
    const url = httpsServer.serve(p, undefined, { 'cache-control': 'max-age=600' });
    const resolver = resolverFor(clock);
    await resolver.resolve(url);
    clock.advance(601);
    httpsServer.routes.set(p, (_req, res) => res.writeHead(404).end());
    await rejectsWith(resolver.resolve(url), /HTTP 404/);
    httpsServer.serve(p, documentFor(url, { client_secret: 'now leaked' }));
    await rejectsWith(resolver.resolve(url), /client_secret/);
  });

  it('refreshes the stored client when the document changes after it goes stale', async () => {
    const clock = new ManualClock();
    const p = path('changes');
    const url = httpsServer.serve(p, undefined, { 'cache-control': 'max-age=60' });
    const resolver = resolverFor(clock);
    const first = await resolver.resolve(url);
    httpsServer.serve(p, documentFor(url, { client_name: 'Renamed' }), { 'cache-control': 'max-age=60' });
    clock.advance(61);
    const second = await resolver.resolve(url);
    assert.equal(second.id, first.id);
    assert.equal(second.name, 'Renamed');
  });

  it('shares one fetch between concurrent requests for the same client_id', async () => {
    const clock = new ManualClock();
    const p = path('concurrent');
    const url = httpsServer.serve(p);
    const resolver = resolverFor(clock);
    const [a, b, c] = await Promise.all([
      resolver.resolve(url),
      resolver.resolve(url),
      resolver.resolve(url),
    ]);
    assert.equal(a.id, b.id);
    assert.equal(b.id, c.id);
    assert.equal(httpsServer.hits.get(p), 1);
  });

  it('applies CIMD_ALLOWED_HOSTS to cached documents too', async () => {
    const clock = new ManualClock();
    const url = httpsServer.serve(path('allow-list'), undefined, { 'cache-control': 'max-age=600' });
    await resolverFor(clock).resolve(url);
    const strict = createClientResolver(createStores(t.db.prisma), {
      config: { ...config, cimdAllowedHosts: ['claude.ai'] },
      clock,
      cimd: { ca: tls.cert },
    });
    await rejectsWith(strict.resolve(url), /allowed CIMD hosts/);
  });

  it('resolves a registered client whose client_id is a URL from the database without fetching', async () => {
    const url = `${httpsServer.origin}${path('operator')}`;
    await createStores(t.db.prisma).clients.create({
      clientId: url,
      kind: 'OPERATOR',
      name: 'Operator client',
      redirectUris: ['https://app.example/cb'],
      grantTypes: ['authorization_code'],
      responseTypes: ['code'],
      tokenEndpointAuthMethod: 'none',
    });
    const client = await resolverFor(new ManualClock()).resolve(url);
    assert.equal(client.kind, 'OPERATOR');
    assert.equal(httpsServer.hits.get(path('operator')), undefined);
  });

  it('says unknown client_id for an unknown non-URL client_id, and why a malformed URL is unusable', async () => {
    const resolver = resolverFor(new ManualClock());
    await rejectsWith(resolver.resolve('no-such-client'), /^unknown client_id$/);
    await rejectsWith(resolver.resolve('https://example.com/'), /must have a path/);
  });
});

describe('start-up warning', () => {
  it('warns loudly when CIMD_ALLOW_LOOPBACK is on, and says nothing when it is off', () => {
    const lines: string[] = [];
    const log = { warn: (_obj: object, msg: string) => lines.push(msg) };
    warnIfCimdLoopbackAllowed({ cimdAllowLoopback: false }, log);
    assert.equal(lines.length, 0);
    warnIfCimdLoopbackAllowed({ cimdAllowLoopback: true }, log);
    assert.match(lines[0] ?? '', /CIMD_ALLOW_LOOPBACK is on.*never enable it in production/s);
  });
});
