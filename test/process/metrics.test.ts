// /metrics in the real server process (node dist/main.js; README: Metrics): with METRICS_PORT the metrics listener
// starts after the public one and says where, the public listener has no /metrics, and SIGTERM still stops both.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { randomToken } from '../../src/lib/crypto.ts';
import { createPostgresDatabase } from '../helpers/db.ts';
import { spawnServer, statusOf, tempDir } from '../helpers/server-process.ts';

describe('the metrics listener of the server process', () => {
  const drops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const drop of drops) await drop();
  });

  it('serves /metrics on METRICS_PORT only, behind METRICS_TOKEN, and stops with the server', async () => {
    const pg = await createPostgresDatabase();
    drops.push(pg.drop);
    const token = randomToken(32);
    const server = spawnServer({ env: { DATABASE_URL: pg.url, METRICS_PORT: '0', METRICS_TOKEN: token } });
    const url = await server.listening;
    const ready = await server.logged('metrics listener ready');
    const metricsUrl = String(ready.metrics);
    assert.match(metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    assert.notEqual(new URL(metricsUrl).port, new URL(url).port);
    assert.equal(
      server.logs().filter((l) => /^Server listening at/.test(String(l.msg))).length,
      1,
      'only the public listener says "Server listening at"',
    );

    assert.equal(await statusOf(url, '/healthz'), 200);
    assert.equal(await statusOf(url, '/metrics'), 404);
    assert.equal((await fetch(metricsUrl)).status, 401);
    const res = await fetch(metricsUrl, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /^latchkey_http_requests_total\{method="GET",route="\/healthz",status="200"\} 1$/m);
    assert.match(text, /^latchkey_db_pool_connections\{state="total"\} \d+$/m);
    assert.match(text, /^process_resident_memory_bytes \d+/m);
    assert.deepEqual(await server.stop(), { code: 0, signal: null });
  });

  it('is one line on stderr naming METRICS_PORT, exit 1, before the database opens, when that port is busy', async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const busy = (holder.address() as { port: number }).port;
    const dir = await tempDir('latchkey-metrics-');
    drops.push(async () => {
      holder.close();
      await dir.remove();
    });
    const dataDir = join(dir.path, 'data');
    const server = spawnServer({ env: { METRICS_PORT: String(busy), DATA_DIR: dataDir } });
    assert.deepEqual(await server.exited, { code: 1, signal: null });
    assert.equal(
      server.stderr(),
      `latchkey: cannot listen on 127.0.0.1:${busy}: the port is in use (by another program, or a Latchkey ` +
        'already running). Stop it, or set METRICS_PORT to a free port.\n',
    );
    assert.ok(!existsSync(dataDir), 'the database was never opened');
  });
});
