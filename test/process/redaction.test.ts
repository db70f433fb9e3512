// DESIGN, security rules: no secret, token, code, verifier, password or cookie ever reaches a log line.
// Requests carry every kind of secret in every place a client puts one (Authorization Basic and Bearer, Cookie, the
// query string, form and JSON bodies, a body that fails to parse), and a route logs objects holding them the ways
// route code does; at level trace, none of the values may appear in the output, while the request ids and paths do
// (so the check is not passing on an empty log). Once in-process with the server's own logger options, once
// against the real server's stdout.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { loggerOptions } from '../../src/logger.ts';
import { basicCredentials } from '../helpers/basic-auth.ts';
import { migratedDatabase, type TestDatabase } from '../helpers/db.ts';
import { type ServerProcess, spawnServer, tempDir } from '../helpers/server-process.ts';

const SECRET_PARAMS = [
  'password',
  'client_secret',
  'code',
  'code_verifier',
  'refresh_token',
  'access_token',
  'token',
  'current_password',
  'new_password',
  'confirm_password',
] as const;

/** A fresh, recognisable value for every secret. */
function makeSecrets() {
  const value = (label: string) => `${label}-${randomBytes(12).toString('hex')}`;
  const params = Object.fromEntries(SECRET_PARAMS.map((p) => [p, value(p)])) as Record<
    (typeof SECRET_PARAMS)[number],
    string
  >;
  const basicSecret = value('basic_secret');
  const basic = basicCredentials('some-client', basicSecret);
  const bearer = value('bearer');
  const cookie = value('cookie');
  return {
    params,
    headers: { basic, bearer, cookie },
    /** Every string that must never be logged. */
    all: [...Object.values(params), basicSecret, basic, bearer, cookie],
  };
}

type Secrets = ReturnType<typeof makeSecrets>;

interface Sent {
  requestIds: string[];
  paths: string[];
}

/** Sends requests carrying the secrets to routes that exist and to one that does not. */
async function sendSecretRequests(baseUrl: string, s: Secrets): Promise<Sent> {
  const query = new URLSearchParams(s.params).toString();
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    client_id: 'some-client',
    ...s.params,
  });
  const json = JSON.stringify({ redirect_uris: ['http://127.0.0.1:9/cb'], ...s.params });
  const auth = {
    basic: { authorization: `Basic ${s.headers.basic}` },
    bearer: { authorization: `Bearer ${s.headers.bearer}` },
  };
  const cookie = { cookie: `latchkey_session=${s.headers.cookie}; other=${s.headers.cookie}` };
  const formType = { 'content-type': 'application/x-www-form-urlencoded' };
  const jsonType = { 'content-type': 'application/json' };

  const requests: [string, RequestInit][] = [
    [`/?${query}`, { headers: { ...auth.bearer, ...cookie } }],
    [
      `/authorize?${query}&response_type=code&client_id=some-client`,
      { headers: { ...auth.basic, ...cookie } },
    ],
    ['/token', { method: 'POST', headers: { ...auth.basic, ...cookie, ...formType }, body: form }],
    [`/token?${query}`, { method: 'POST', headers: { ...jsonType }, body: json }],
    ['/revoke', { method: 'POST', headers: { ...auth.basic, ...formType }, body: form }],
    ['/introspect', { method: 'POST', headers: { ...auth.basic, ...formType }, body: form }],
    ['/register', { method: 'POST', headers: { ...auth.bearer, ...jsonType }, body: json }],
    ['/login', { method: 'POST', headers: { ...cookie, ...formType }, body: form }],
    // The person's own pages (issue 13): a password link carries its secret in the query and the form.
    [`/set-password?${query}`, { headers: { ...cookie } }],
    ['/set-password', { method: 'POST', headers: { ...cookie, ...formType }, body: form }],
    ['/account/password', { method: 'POST', headers: { ...cookie, ...formType }, body: form }],
    ['/apps/revoke', { method: 'POST', headers: { ...cookie, ...formType }, body: form }],
    ['/logout', { method: 'POST', headers: { ...cookie, ...formType }, body: form }],
    // A body that fails to parse: parsers quote the text they choke on in their error messages.
    ['/register', { method: 'POST', headers: { ...jsonType }, body: `${json.slice(0, -1)},` }],
    ['/token', { method: 'POST', headers: { ...jsonType }, body: `{"password": "${s.params.password}` }],
    [
      `/no-such-route?${query}`,
      { method: 'POST', headers: { ...auth.bearer, ...cookie, ...formType }, body: form },
    ],
  ];
  const sent: Sent = { requestIds: [], paths: [] };
  for (const [path, init] of requests) {
    const res = await fetch(`${baseUrl}${path}`, { ...init, redirect: 'manual' });
    await res.arrayBuffer();
    const id = res.headers.get('x-request-id');
    assert.ok(id, `${path} answered with a request id`);
    sent.requestIds.push(id);
    sent.paths.push(path.split('?')[0]!);
  }
  return sent;
}

function assertNothingSecret(log: string, secrets: Secrets, sent: Sent): void {
  for (const id of sent.requestIds) assert.ok(log.includes(id), `request ${id} was logged`);
  for (const path of sent.paths) assert.ok(log.includes(`"path":"${path}"`), `${path} was logged`);
  const leaked = secrets.all.filter((v) => log.includes(v));
  const lines = log.split('\n').filter((l) => leaked.some((v) => l.includes(v)));
  assert.deepEqual(leaked, [], `secrets in the log:\n${lines.join('\n')}`);
}

describe('log redaction', () => {
  describe('in-process, with the server logger options at level trace', () => {
    let t: TestDatabase;
    let app: FastifyInstance;
    let url: string;
    const out: string[] = [];
    const secrets = makeSecrets();

    before(async () => {
      t = await migratedDatabase('pglite');
      const sink = new Writable({
        write(chunk, _encoding, done) {
          out.push(String(chunk));
          done();
        },
      });
      const config = loadConfig({ LOG_LEVEL: 'trace' });
      app = await buildApp({ config, db: t.db, logger: pino(loggerOptions(config.logLevel), sink) });
      // Log calls shaped the way route code writes them, handed every secret.
      app.post('/log-shapes', async (req) => {
        const body = req.body as Record<string, string>;
        req.log.info(body, 'fields at the top level');
        req.log.info({ body }, 'the body');
        req.log.info({ query: req.query, headers: req.headers }, 'query and headers');
        req.log.info({ params: body, client: { client_secret: body.client_secret } }, 'nested one level');
        req.log.debug({ req }, 'the request object');
        app.log.info({ client_secret: body.client_secret, refresh_token: body.refresh_token }, 'app logger');
        app.log.warn(
          { tokens: { access_token: body.access_token, token: body.token } },
          'app logger, nested',
        );
        return { ok: true };
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    });
    after(async () => {
      await app?.close();
      await t?.cleanup();
    });

    it('logs no secret from any request, while logging each request id and path', async () => {
      const sent = await sendSecretRequests(url, secrets);
      assertNothingSecret(out.join(''), secrets, sent);
    });

    it('logs no secret that route code passes to request.log and app.log', async () => {
      const res = await fetch(`${url}/log-shapes?${new URLSearchParams(secrets.params)}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${secrets.headers.basic}`,
          cookie: `latchkey_session=${secrets.headers.cookie}`,
        },
        body: new URLSearchParams(secrets.params),
      });
      assert.equal(res.status, 200);
      const id = res.headers.get('x-request-id')!;
      const log = out.join('');
      for (const msg of [
        'fields at the top level',
        'the body',
        'nested one level',
        'the request object',
        'app logger, nested',
      ]) {
        assert.ok(log.includes(`"msg":"${msg}"`), `"${msg}" was logged`);
      }
      assertNothingSecret(log, secrets, { requestIds: [id], paths: ['/log-shapes'] });
    });
  });

  describe('the real server at LOG_LEVEL=trace', () => {
    let server: ServerProcess;
    let dir: Awaited<ReturnType<typeof tempDir>>;
    before(async () => {
      dir = await tempDir('latchkey-redaction-');
      server = spawnServer({ env: { DATA_DIR: join(dir.path, 'data'), LOG_LEVEL: 'trace' } });
    });
    after(async () => {
      await server.stop();
      await dir.remove();
    });

    it('writes no secret from any request to its output, while logging each request id and path', async () => {
      const url = await server.listening;
      const secrets = makeSecrets();
      const sent = await sendSecretRequests(url, secrets);
      assert.deepEqual(await server.stop(), { code: 0, signal: null });
      assertNothingSecret(server.stdout() + server.stderr(), secrets, sent);
    });
  });
});
