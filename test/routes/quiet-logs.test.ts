// LOG_LEVEL=silent means no line at all, also from the routes that log only warnings (/readyz, /introspect, assets):
// their route level never makes a quieter configured level louder. At info, the same failure is logged as a warning,
// which shows the check below can fail. /token is quiet the same way for routine answers, and still logs every refusal.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exchangeCode, obtainCode, refreshToken } from '../helpers/flow.ts';
import { captureLogs } from '../helpers/log-capture.ts';
import { addClient, addResourceServer, addUser, startServer } from '../helpers/server.ts';

async function readinessFailureLogs(level: 'silent' | 'info'): Promise<string[]> {
  const logs = captureLogs('info');
  logs.logger.level = level;
  const server = await startServer('pglite', { env: { LOG_LEVEL: level }, logger: logs.logger });
  try {
    await server.database.db.close();
    const res = await fetch(`${server.url}/readyz`);
    assert.equal(res.status, 503);
    const introspection = await fetch(`${server.url}/introspect`, { method: 'POST', body: 'token=x' });
    assert.equal(introspection.status, 400);
    return [...logs.raw];
  } finally {
    await server.app.close();
  }
}

describe('quiet routes and LOG_LEVEL', () => {
  it('at LOG_LEVEL=silent, a failed readiness check writes nothing', async () => {
    assert.deepEqual(await readinessFailureLogs('silent'), []);
  });

  it('at LOG_LEVEL=info, the same failure is logged as a warning', async () => {
    const lines = await readinessFailureLogs('info');
    assert.ok(
      lines.some((l) => l.includes('readiness check failed')),
      lines.join('\n'),
    );
  });
});

/** The lines a code exchange, a refresh and a refused exchange (a spent code) write at `level`, by request id. */
async function tokenLogs(level: 'info' | 'debug') {
  const logs = captureLogs(level);
  const server = await startServer('pglite', { env: { LOG_LEVEL: level }, logger: logs.logger });
  try {
    const client = await addClient(server.stores);
    const email = await addUser(server.stores);
    await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    const code = await obtainCode(server, client, email);
    const exchanged = await exchangeCode(server, client, code);
    assert.equal(exchanged.status, 200);
    const refreshed = await refreshToken(server, client, String(exchanged.body.refresh_token));
    assert.equal(refreshed.status, 200);
    const replayed = await exchangeCode(server, client, code);
    assert.equal(replayed.status, 400);
    const of = (res: { headers: Headers }) => {
      const id = res.headers.get('x-request-id');
      return logs.lines.filter((l) => l.reqId === id).map((l) => `${l.level} ${l.msg}`);
    };
    return {
      exchanged: of(exchanged),
      refreshed: of(refreshed),
      replayed: of(replayed),
      replayedStatus: logs.lines.find((l) => l.reqId === replayed.headers.get('x-request-id') && l.res)?.res,
      all: [...logs.raw],
    };
  } finally {
    await server.close();
  }
}

describe('/token logs', () => {
  it('at LOG_LEVEL=info, a routine exchange or refresh writes no line, and a refusal writes one at info', async () => {
    const logs = await tokenLogs('info');
    assert.deepEqual(logs.exchanged, []);
    assert.deepEqual(logs.refreshed, []);
    assert.deepEqual(logs.replayed, ['30 request completed']);
    assert.deepEqual(logs.replayedStatus, { statusCode: 400 });
    assert.ok(!logs.all.some((l) => l.includes('lk_code_') || l.includes('lk_rt_') || l.includes('lk_at_')));
  });

  it('at LOG_LEVEL=debug, every /token request is logged', async () => {
    const logs = await tokenLogs('debug');
    assert.deepEqual(logs.exchanged, ['30 incoming request', '30 request completed']);
    assert.deepEqual(logs.refreshed, ['30 incoming request', '30 request completed']);
    assert.deepEqual(logs.replayed, ['30 incoming request', '30 request completed']);
  });
});
