// CIMD clients resolved through the database cache (draft-ietf-oauth-client-id-metadata-document-01 §4.1, §4.3,
// §4.4; RFC 5861 stale-if-error), against documents served on loopback.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { loadConfig } from '../../../src/config.ts';
import { ManualClock } from '../../../src/lib/clock.ts';
import { CIMD_MAX_FRESHNESS, CIMD_MIN_FRESHNESS } from '../../../src/oauth/cimd/index.ts';
import { type ClientResolverOptions, createClientResolver } from '../../../src/oauth/clients.ts';
import { OAuthError } from '../../../src/oauth/errors.ts';
import { createStores } from '../../../src/store/index.ts';
import { forEachDatabase, migratedDatabase, type TestDatabase } from '../../helpers/db.ts';
import { documentFor, documentServers, fakeLookup, type Handler, rejectsWith } from './support.ts';

const { tls, httpsServer, httpServer } = documentServers();

forEachDatabase('CIMD clients resolved through the database cache', (kind) => {
  let t: TestDatabase;
  before(async () => {
    t = await migratedDatabase(kind);
  });
  after(() => t.cleanup());

  const config = { ...loadConfig({}), cimdAllowLoopback: true };
  const resolverFor = (clock: ManualClock, extra: Partial<ClientResolverOptions> = {}) =>
    createClientResolver(createStores(t.db), {
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

  it('never caches a failure as a document: once the remembered failure ends, the next request fetches again (draft §4.3)', async () => {
    const clock = new ManualClock();
    const p = path('flaky');
    const url = `${httpsServer.origin}${p}`;
    httpsServer.routes.set(p, (_req, res) => res.writeHead(404).end());
    const resolver = resolverFor(clock);
    await rejectsWith(resolver.resolve(url), /HTTP 404/);
    assert.equal(await t.db.prisma.client.count({ where: { clientId: url } }), 0);
    clock.advance(config.cimdFailureTtl + 1);
    await rejectsWith(resolver.resolve(url), /HTTP 404/);
    assert.equal(httpsServer.hits.get(p), 2);
    httpsServer.serve(p);
    clock.advance(config.cimdFailureTtl + 1);
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
    clock.advance(config.cimdFailureTtl + 1); // the failure is remembered until CIMD_FAILURE_TTL passes
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
    clock.advance(config.cimdFailureTtl + 1); // the failure is remembered until CIMD_FAILURE_TTL passes
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
    const strict = createClientResolver(createStores(t.db), {
      config: { ...config, cimdAllowedHosts: ['claude.ai'] },
      clock,
      cimd: { ca: tls.cert },
    });
    await rejectsWith(strict.resolve(url), /allowed CIMD hosts/);
  });

  it('resolves a registered client whose client_id is a URL from the database without fetching', async () => {
    const url = `${httpsServer.origin}${path('operator')}`;
    await createStores(t.db).clients.create({
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

  it("words a URL rule an unknown client_id breaks as the id's own, and one a cached client breaks as its document's", async () => {
    const described = (description: string) => (err: unknown) =>
      err instanceof OAuthError && err.code === 'invalid_client' && err.description === description;
    await assert.rejects(
      resolverFor(new ManualClock()).resolve('https://example.com/'),
      described('client_id URL must have a path'),
    );
    const clock = new ManualClock();
    const url = httpServer.serve(path('http-then-flag-off'));
    assert.equal((await resolverFor(clock).resolve(url)).clientId, url);
    const strict = createClientResolver(createStores(t.db), {
      config: { ...config, cimdAllowLoopback: false },
      clock,
    });
    await assert.rejects(
      strict.resolve(url),
      described('client metadata document: client_id URL must use https'),
    );
    await assert.rejects(
      createClientResolver(createStores(t.db), {
        config: { ...config, cimdAllowedHosts: ['claude.ai'] },
        clock,
      }).resolve(`${httpsServer.origin}${path('never-served')}`),
      described("client metadata document: client_id host is not in this server's allowed CIMD hosts"),
    );
  });

  it('says unknown client_id for an unknown non-URL client_id, and why a malformed URL is unusable', async () => {
    const resolver = resolverFor(new ManualClock());
    await rejectsWith(resolver.resolve('no-such-client'), /^unknown client_id$/);
    await rejectsWith(resolver.resolve('https://example.com/'), /must have a path/);
  });
});
