// Issue 11, acceptance 4: `latchkey doctor` passes against the example MCP server (examples/mcp-server) and a real
// Latchkey, names the failing step for broken setups built here with small HTTP servers (no protected resource
// metadata; a relative resource_metadata; an issuer mismatch between the two discovery documents; a resource not
// registered here; CIMD advertised without "none"), and changes nothing in the database.
// On Postgres the doctor runs through the CLI (runCli, --json, exit status); on PGlite, which the CLI reaches only
// through a running server's socket, runDoctor is called with the server's stores.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { after, before, it } from 'node:test';
import { createMcpApp } from '../../examples/mcp-server/server.ts';
import { doctorCommand } from '../../src/cli/doctor.ts';
import { runCli } from '../../src/cli/run.ts';
import { runDoctor } from '../../src/doctor/index.ts';
import type { DoctorReport } from '../../src/doctor/report.ts';
import { forEachDatabase, type TestDatabase } from '../helpers/db.ts';
import { rowCounts } from '../helpers/row-counts.ts';
import { addClient, addResourceServer, startServer, type TestServer } from '../helpers/server.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, base: string) => void;

interface Listener {
  base: string;
  close(): Promise<void>;
}

const servers: Server[] = [];

/** An HTTP server on 127.0.0.1 (closed after the file). */
async function listen(handler?: Handler): Promise<{ server: Server; base: string }> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  if (handler) server.on('request', (req, res) => handler(req, res, base));
  return { server, base };
}

function json(res: ServerResponse, body: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

interface FakeMcp {
  /** The resource_metadata value for the challenge, given the server's base URL; undefined leaves it out. */
  resourceMetadata?: (base: string) => string;
  /** Whether the well-known protected resource metadata is served. */
  prm: boolean;
  authorizationServer: string;
}

/** An MCP endpoint at /mcp that answers 401 and (maybe) serves its protected resource metadata. */
async function fakeMcp(options: FakeMcp): Promise<Listener> {
  const { base } = await listen((req, res, base) => {
    const path = new URL(req.url!, base).pathname;
    if (path === '/mcp') {
      const rm = options.resourceMetadata?.(base);
      req.resume();
      res.writeHead(401, { 'www-authenticate': `Bearer${rm ? ` resource_metadata="${rm}"` : ''}` }).end();
      return;
    }
    if (options.prm && path.startsWith('/.well-known/oauth-protected-resource')) {
      return json(res, { resource: `${base}/mcp`, authorization_servers: [options.authorizationServer] });
    }
    json(res, { error: 'not_found' }, 404);
  });
  return { base, close: async () => {} };
}

/** An authorization server that serves only discovery documents, built from its own issuer. */
async function fakeAuthorizationServer(
  docs: (issuer: string) => { oauth: Record<string, unknown>; openid: Record<string, unknown> },
): Promise<Listener> {
  const { base } = await listen((req, res, base) => {
    const path = new URL(req.url!, base).pathname;
    const d = docs(base);
    if (path === '/.well-known/oauth-authorization-server') return json(res, d.oauth);
    if (path === '/.well-known/openid-configuration') return json(res, d.openid);
    json(res, { error: 'not_found' }, 404);
  });
  return { base, close: async () => {} };
}

function metadataOf(issuer: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['none', 'client_secret_basic'],
    client_id_metadata_document_supported: true,
    authorization_response_iss_parameter_supported: true,
    ...overrides,
  };
}

/** Every table's row count and a digest of its rows, to show a run changed nothing (not even a timestamp). */
async function tableDigests(database: TestDatabase, except: readonly string[] = []) {
  const digests: Record<string, { rows: number; digest: string | null }> = {};
  for (const name of Object.keys(await rowCounts(database, except))) {
    const [row] = await database.db.prisma.$queryRawUnsafe<{ rows: number; digest: string | null }[]>(
      `SELECT count(*)::int AS rows, md5(string_agg(t::text, ',' ORDER BY t::text)) AS digest FROM "${name}" t`,
    );
    digests[name] = row!;
  }
  return digests;
}

const failed = (report: DoctorReport) =>
  report.steps
    .filter((s) => s.status === 'fail')
    .map((s) => s.id)
    .sort();

after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

forEachDatabase('latchkey doctor', (kind) => {
  let latchkey: TestServer;
  let mcpUrl: string;

  /** Runs the doctor as the operator would: through the CLI on Postgres, through runDoctor on PGlite. */
  async function doctor(url: string, register = false): Promise<{ code: number; report: DoctorReport }> {
    if (kind === 'pglite') {
      const report = await runDoctor({ url, issuer: latchkey.url, stores: latchkey.stores, register });
      return { code: report.ok ? 0 : 1, report };
    }
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (d) => (out += d));
    stderr.on('data', (d) => (err += d));
    const code = await runCli(
      ['--json', 'doctor', url, ...(register ? ['--register'] : [])],
      [doctorCommand],
      {
        io: { stdin: process.stdin, stdout, stderr },
        env: { DATABASE_URL: latchkey.database.url!, ISSUER: latchkey.url, LOG_LEVEL: 'silent' },
      },
    );
    assert.equal(err, '', 'nothing on stderr with --json');
    return { code, report: JSON.parse(out) as DoctorReport };
  }

  before(async () => {
    latchkey = await startServer(kind);
    // The example MCP server on its own listener, registered here as `latchkey resource add` does.
    const { server, base } = await listen();
    mcpUrl = `${base}/mcp`;
    const rs = await addResourceServer(latchkey.stores, mcpUrl, 'Example');
    const { app } = createMcpApp({
      publicUrl: mcpUrl,
      issuer: latchkey.url,
      clientId: rs.clientId,
      clientSecret: rs.clientSecret,
      log: () => {},
    });
    server.on('request', app);
  });
  after(() => latchkey.close());

  it('passes every step against the example MCP server and Latchkey, with a dry-run registration', async () => {
    const { code, report } = await doctor(mcpUrl, true);
    assert.deepEqual(
      report.steps.filter((s) => s.status !== 'pass'),
      [],
      'every step passes, none skipped',
    );
    assert.equal(code, 0);
    assert.equal(report.ok, true);
    assert.equal(report.issuer, latchkey.url);
    const ids = report.steps.map((s) => s.id);
    for (const id of [
      'mcp_challenge',
      'resource_metadata_url',
      'prm_path_suffixed',
      'prm_root',
      'as_metadata_oauth',
      'as_metadata_openid',
      'pkce_s256',
      'cimd_none',
      'iss_parameter',
      'resource_registered',
      'dcr',
      'authorize_redirect',
      'authorize_error_redirect',
      'https',
      'clock',
    ]) {
      assert.ok(ids.includes(id), `the report has the step ${id}`);
    }
  });

  it('changes nothing: every table holds the same rows after a run', async () => {
    await addClient(latchkey.stores, { name: 'Existing app' });
    // The probes' refused /authorize requests are recorded in the client's trace (README: Client traces): an
    // observation, like a log line, written a moment later; every other table must hold the same rows.
    const before = await tableDigests(latchkey.database, ['client_traces']);
    const { report } = await doctor(mcpUrl);
    // Without --register the /authorize probes use the client already registered.
    assert.deepEqual(failed(report), []);
    assert.equal(report.steps.find((s) => s.id === 'authorize_error_redirect')?.status, 'pass');
    assert.deepEqual(await tableDigests(latchkey.database, ['client_traces']), before);
  });

  it('--register deletes the client it registered: only the registration rate-limit counter moves', async () => {
    const before = await tableDigests(latchkey.database, ['rate_limits', 'audit_events', 'client_traces']);
    const eventsBefore = await latchkey.database.db.prisma.auditEvent.findMany({ select: { id: true } });
    const { report } = await doctor(mcpUrl, true);
    assert.equal(report.steps.find((s) => s.id === 'dcr')?.status, 'pass');
    assert.deepEqual(failed(report), []);
    // The server counts the registration against REGISTRATION_RATE_LIMIT for this address (README: Check a
    // deployment); every other table, clients included, holds exactly the rows it held, and the audit trail
    // (README: Audit trail) records the registration and its deletion, and nothing else.
    assert.deepEqual(
      await tableDigests(latchkey.database, ['rate_limits', 'audit_events', 'client_traces']),
      before,
    );
    const events = await latchkey.database.db.prisma.auditEvent.findMany({
      where: { id: { notIn: eventsBefore.map((e) => e.id) } },
      orderBy: { occurredAt: 'asc' },
    });
    assert.deepEqual(
      events.map((e) => [e.action, e.actor]),
      [
        ['client_registered', `client:${events[0]?.clientId}`],
        ['client_deleted', 'operator'],
      ],
    );
    assert.equal(events[1]?.clientId, events[0]?.clientId);
  });

  it('names the missing protected resource metadata', async () => {
    const mcp = await fakeMcp({
      prm: false,
      resourceMetadata: (base) => `${base}/.well-known/oauth-protected-resource/mcp`,
      authorizationServer: latchkey.url,
    });
    await addResourceServer(latchkey.stores, `${mcp.base}/mcp`);
    const { code, report } = await doctor(`${mcp.base}/mcp`);
    assert.equal(code, 1);
    assert.deepEqual(failed(report), ['prm_path_suffixed', 'prm_root']);
    const step = report.steps.find((s) => s.id === 'prm_root')!;
    assert.match(step.detail, /answers 404/);
    assert.match(step.fix!, /authorization_servers/);
  });

  it('names a relative resource_metadata URL', async () => {
    const mcp = await fakeMcp({
      prm: true,
      resourceMetadata: () => '/.well-known/oauth-protected-resource/mcp',
      authorizationServer: latchkey.url,
    });
    await addResourceServer(latchkey.stores, `${mcp.base}/mcp`);
    const { code, report } = await doctor(`${mcp.base}/mcp`);
    assert.equal(code, 1);
    assert.deepEqual(failed(report), ['resource_metadata_url']);
    assert.match(report.steps.find((s) => s.id === 'resource_metadata_url')!.detail, /not an absolute/);
  });

  it('names an issuer that differs between the two discovery documents', async () => {
    const as = await fakeAuthorizationServer((issuer) => ({
      oauth: metadataOf(issuer),
      openid: metadataOf(`${issuer}/`),
    }));
    const mcp = await fakeMcp({
      prm: true,
      resourceMetadata: (base) => `${base}/.well-known/oauth-protected-resource/mcp`,
      authorizationServer: as.base,
    });
    await addResourceServer(latchkey.stores, `${mcp.base}/mcp`);
    const { code, report } = await doctor(`${mcp.base}/mcp`);
    assert.equal(code, 1);
    // The metadata names another authorization server than this Latchkey, and that one's documents disagree.
    assert.deepEqual(failed(report), ['as_metadata_openid', 'prm_path_suffixed', 'prm_root']);
    assert.equal(report.steps.find((s) => s.id === 'as_metadata_oauth')?.status, 'pass');
    assert.match(report.steps.find((s) => s.id === 'as_metadata_openid')!.detail, /names the issuer/);
    assert.match(report.steps.find((s) => s.id === 'prm_root')!.detail, /not this Latchkey/);
  });

  it('names a resource not registered here', async () => {
    const mcp = await fakeMcp({
      prm: true,
      resourceMetadata: (base) => `${base}/.well-known/oauth-protected-resource/mcp`,
      authorizationServer: latchkey.url,
    });
    const { code, report } = await doctor(`${mcp.base}/mcp`);
    assert.equal(code, 1);
    assert.deepEqual(failed(report), ['resource_registered']);
    assert.match(report.steps.find((s) => s.id === 'resource_registered')!.fix!, /latchkey resource add/);
  });

  it('names CIMD advertised without "none"', async () => {
    const as = await fakeAuthorizationServer((issuer) => {
      const doc = metadataOf(issuer, { token_endpoint_auth_methods_supported: ['client_secret_basic'] });
      return { oauth: doc, openid: doc };
    });
    const mcp = await fakeMcp({
      prm: true,
      resourceMetadata: (base) => `${base}/.well-known/oauth-protected-resource/mcp`,
      authorizationServer: as.base,
    });
    await addResourceServer(latchkey.stores, `${mcp.base}/mcp`);
    const { code, report } = await doctor(`${mcp.base}/mcp`);
    assert.equal(code, 1);
    assert.deepEqual(failed(report), ['cimd_none', 'prm_path_suffixed', 'prm_root']);
  });

  it('does not follow a redirect to another host, and says so', async () => {
    const elsewhere = await listen((_req, res) => json(res, { resource: 'x', authorization_servers: [] }));
    const mcp = await listen((req, res, base) => {
      const path = new URL(req.url!, base).pathname;
      req.resume();
      if (path === '/mcp') {
        res
          .writeHead(401, {
            'www-authenticate': `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`,
          })
          .end();
      } else if (path === '/.well-known/oauth-protected-resource') {
        res.writeHead(302, { location: `${elsewhere.base}/prm` }).end();
      } else {
        json(res, { resource: `${base}/mcp`, authorization_servers: [latchkey.url] });
      }
    });
    let elsewhereAsked = 0;
    elsewhere.server.on('request', () => elsewhereAsked++);
    await addResourceServer(latchkey.stores, `${mcp.base}/mcp`);
    const { code, report } = await doctor(`${mcp.base}/mcp`);
    assert.equal(code, 1);
    assert.deepEqual(failed(report), ['prm_root']);
    assert.match(report.steps.find((s) => s.id === 'prm_root')!.detail, /another host.*did not follow/);
    assert.equal(elsewhereAsked, 0);
  });

  it('prints each step with its fix, and a summary, in text mode', {
    skip: kind !== 'postgres' && 'the CLI reaches PGlite only through a running server',
  }, async () => {
    const mcp = await fakeMcp({
      prm: true,
      resourceMetadata: () => '/.well-known/oauth-protected-resource/mcp',
      authorizationServer: latchkey.url,
    });
    await addResourceServer(latchkey.stores, `${mcp.base}/mcp`);
    const text = async (url: string) => {
      const stdout = new PassThrough();
      let out = '';
      stdout.on('data', (d) => (out += d));
      const code = await runCli(['doctor', url, '--register'], [doctorCommand], {
        io: { stdin: process.stdin, stdout, stderr: new PassThrough() },
        env: { DATABASE_URL: latchkey.database.url!, ISSUER: latchkey.url, LOG_LEVEL: 'silent' },
      });
      return { code, out };
    };
    const good = await text(mcpUrl);
    assert.equal(good.code, 0);
    assert.match(good.out, /^PASS {2}mcp_challenge +POST .* answers 401/m);
    assert.match(good.out, /^\d+ passed, 0 failed: Claude and the MCP SDK should connect\.$/m);
    const bad = await text(`${mcp.base}/mcp`);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /^FAIL {2}resource_metadata_url +resource_metadata is "\/\.well-known/m);
    assert.match(
      bad.out,
      /^ +fix: make it absolute, e\.g\. http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp$/m,
    );
    assert.match(bad.out, /1 failed: fix the failures above/);
  });

  it('names 307/308 redirects from /authorize (a proxy rewriting them) and a clock off by minutes', async () => {
    await addClient(latchkey.stores, { name: 'Probe app' });
    // What a proxy in front of Latchkey that turns its 302s into 307s would hand the client.
    const rewriting: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (res.status !== 302 || !String(input).includes('/authorize')) return res;
      return new Response(null, { status: 307, headers: res.headers });
    };
    const proxied = await runDoctor({
      url: mcpUrl,
      issuer: latchkey.url,
      stores: latchkey.stores,
      fetch: rewriting,
    });
    assert.deepEqual(failed(proxied), ['authorize_error_redirect', 'authorize_redirect']);
    assert.match(proxied.steps.find((s) => s.id === 'authorize_redirect')!.detail, /answers 307/);
    const later = () => new Date(Date.now() + 5 * 60_000);
    const skewed = await runDoctor({
      url: mcpUrl,
      issuer: latchkey.url,
      stores: latchkey.stores,
      now: later,
    });
    assert.deepEqual(failed(skewed), ['clock']);
    assert.match(skewed.steps.find((s) => s.id === 'clock')!.detail, /differ by 3\d\d s/);
  });

  it('--register skips, not fails, when registration needs an initial access token', async () => {
    const guarded = await startServer(kind, { env: { REGISTRATION_ACCESS_TOKEN: 'x'.repeat(40) } });
    try {
      const mcp = await fakeMcp({
        prm: true,
        resourceMetadata: (base) => `${base}/.well-known/oauth-protected-resource/mcp`,
        authorizationServer: guarded.url,
      });
      await addResourceServer(guarded.stores, `${mcp.base}/mcp`);
      const report = await runDoctor({
        url: `${mcp.base}/mcp`,
        issuer: guarded.url,
        stores: guarded.stores,
        register: true,
      });
      assert.deepEqual(failed(report), []);
      const dcr = report.steps.find((s) => s.id === 'dcr')!;
      assert.equal(dcr.status, 'skip');
      assert.match(dcr.detail, /initial access token/);
      assert.equal((await guarded.stores.clients.list()).length, 0);
    } finally {
      await guarded.close();
    }
  });
});
