// Client addresses behind a reverse proxy (issue 10, acceptance 2). A real proxy listener in front of Latchkey
// appends the address it sees to X-Forwarded-For, as nginx's $proxy_add_x_forwarded_for does, and clients connect
// to it from their own loopback addresses (127.0.0.2, 127.0.0.5…). Whatever a client writes into X-Forwarded-For
// itself, the per-address sign-in and registration limits count the address the proxy saw, with TRUST_PROXY=1
// (one hop) and with TRUST_PROXY naming the proxy's address range. An oversized header is a 4xx, never a 500.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { forEachDatabase } from '../helpers/db.ts';
import { addUser, startServer, type TestServer } from '../helpers/server.ts';

interface Proxy {
  url: string;
  close(): Promise<void>;
}

/** A forwarding proxy: it connects to Latchkey from `localAddress` and appends the client's address to XFF. */
async function startProxy(upstream: string, localAddress: string): Promise<Proxy> {
  const target = new URL(upstream);
  const server: Server = createServer((req, res) => {
    const seen = req.socket.remoteAddress!;
    const prior = req.headers['x-forwarded-for'];
    const headers = { ...req.headers, 'x-forwarded-for': prior ? `${prior}, ${seen}` : seen };
    const forward = request(
      { host: target.hostname, port: target.port, localAddress, method: req.method, path: req.url, headers },
      (answer: IncomingMessage) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A request to `base` from the loopback address `from`, with the headers given. */
function send(
  base: string,
  from: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, base);
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        headers,
        localAddress: from,
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A pre-session cookie and its sign-in form's CSRF token, fetched through `base` from `from`. */
async function signInForm(base: string, from: string): Promise<{ cookie: string; csrf: string }> {
  const page = await send(base, from, 'GET', '/login', {});
  const cookie = (page.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ');
  const csrf = /name="csrf_token" value="([^"]+)"/.exec(page.body)?.[1];
  assert.ok(csrf, 'the sign-in page carries a CSRF token');
  return { cookie, csrf };
}

const REGISTRATION = JSON.stringify({
  client_name: 'Proxy test',
  redirect_uris: ['https://app.example.com/cb'],
});

function proxiedLimits(kind: Parameters<typeof startServer>[0], trustProxy: string, proxyFrom: string) {
  let server: TestServer;
  let proxy: Proxy;
  let email: string;

  before(async () => {
    server = await startServer(kind, {
      env: {
        TRUST_PROXY: trustProxy,
        LOGIN_MAX_ATTEMPTS_PER_ADDRESS: '5',
        LOGIN_MAX_ATTEMPTS_PER_ACCOUNT: '1000',
        REGISTRATION_RATE_LIMIT: '5',
      },
    });
    proxy = await startProxy(server.url, proxyFrom);
    email = await addUser(server.stores);
  });
  after(async () => {
    await proxy.close();
    await server.close();
  });

  it('forged X-Forwarded-For values do not escape the per-address sign-in limit', async () => {
    const { cookie, csrf } = await signInForm(proxy.url, '127.0.0.2');
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await send(
        proxy.url,
        '127.0.0.2',
        'POST',
        '/login',
        {
          'content-type': 'application/x-www-form-urlencoded',
          cookie,
          // A new made-up address each time, and a made-up chain.
          'x-forwarded-for': i % 2 ? `198.51.100.${i}` : `10.0.0.${i}, 192.0.2.${i}`,
        },
        new URLSearchParams({ email, password: 'wrong', csrf_token: csrf }).toString(),
      );
      statuses.push(res.status);
      if (res.status === 429) assert.ok(Number(res.headers['retry-after']) > 0, 'Retry-After on 429');
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);

    // Another client, at its own address, is not affected: the limit counts the address the proxy saw.
    const other = await signInForm(proxy.url, '127.0.0.5');
    const res = await send(
      proxy.url,
      '127.0.0.5',
      'POST',
      '/login',
      {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: other.cookie,
        'x-forwarded-for': '127.0.0.2',
      },
      new URLSearchParams({ email, password: 'wrong', csrf_token: other.csrf }).toString(),
    );
    assert.equal(res.status, 401);
  });

  it('forged X-Forwarded-For values do not escape the per-address registration limit', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await send(
        proxy.url,
        '127.0.0.3',
        'POST',
        '/register',
        { 'content-type': 'application/json', 'x-forwarded-for': `203.0.113.${i}` },
        REGISTRATION,
      );
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [201, 201, 201, 201, 201, 429, 429, 429]);
  });

  it('an oversized or malformed X-Forwarded-For through the proxy is handled without a 5xx', async () => {
    for (const forged of [
      `${'9.'.repeat(3500)}9`,
      'x'.repeat(7000),
      'not an address, ::ffff:zz, 999.1.1.1',
      '',
    ]) {
      const res = await send(
        proxy.url,
        '127.0.0.4',
        'POST',
        '/register',
        { 'content-type': 'application/json', 'x-forwarded-for': forged },
        REGISTRATION,
      );
      assert.ok(res.status < 500, `${res.status}: ${res.body}`);
    }
  });
}

forEachDatabase('behind a proxy', (kind) => {
  describe('TRUST_PROXY=1 (the proxy is one hop away)', () => proxiedLimits(kind, '1', '127.0.0.1'));
  describe('TRUST_PROXY names the proxy by CIDR', () =>
    // The proxy connects from 127.0.0.9; clients on other loopback addresses are not trusted as proxies.
    proxiedLimits(kind, '127.0.0.8/30, 10.0.0.0/8', '127.0.0.9'));

  describe('oversized headers sent straight to Latchkey', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(kind, { env: { TRUST_PROXY: '1', REGISTRATION_RATE_LIMIT: '100' } });
    });
    after(() => server.close());

    it('a 7,000-character X-Forwarded-For becomes a bounded rate-limit key, not a 500', async () => {
      const res = await send(
        server.url,
        '127.0.0.1',
        'POST',
        '/register',
        { 'content-type': 'application/json', 'x-forwarded-for': 'x'.repeat(7000) },
        REGISTRATION,
      );
      assert.equal(res.status, 201, res.body);
      const keys = await server.database.db.prisma.rateLimit.findMany();
      assert.ok(keys.length > 0);
      for (const { key } of keys) {
        assert.match(
          key,
          /^[a-z][a-z0-9-]*:[0-9a-f]{64}$/,
          'a readable kind, then the SHA-256 of the whole key',
        );
      }
    });

    it('headers beyond the server limit are 431 with a standard error', async () => {
      const res = await send(server.url, '127.0.0.1', 'GET', '/healthz', {
        'x-forwarded-for': 'x'.repeat(20_000),
      });
      assert.equal(res.status, 431);
      assert.equal(JSON.parse(res.body).error, 'invalid_request');
    });
  });
});
