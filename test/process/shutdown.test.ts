// Issue 2, graceful shutdown: on SIGTERM the server stops accepting connections, finishes the requests under way
// (their writes included), closes the database and exits 0; the embedded database's lock and socket are gone.
// The request in flight is a dynamic client registration (POST /register) whose body is only half sent when the
// signal arrives: Fastify has routed it (and counted it against the rate limit) but cannot answer it yet.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { LOCK_FILE, openEmbedded, SOCKET_FILE } from '../../src/db/embedded.ts';
import { createPostgresDatabase } from '../helpers/db.ts';
import { refusesConnections } from '../helpers/net.ts';
import { type ServerProcess, spawnServer, tempDir } from '../helpers/server-process.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends a request's head and the first `firstBytes` of its body; `finish()` sends the rest and reads the answer. */
async function halfSentPost(
  baseUrl: string,
  path: string,
  body: string,
  firstBytes: number,
): Promise<{ finish(): Promise<RawResponse> }> {
  const { hostname, port } = new URL(baseUrl);
  const socket = net.connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let received = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    received += chunk;
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, firstBytes)}`,
  );
  return {
    async finish() {
      assert.equal(received, '', 'nothing is answered before the body is complete');
      socket.write(body.slice(firstBytes));
      // The server closes the connection after the answer: it is shutting down.
      await closed;
      const [head = '', ...rest] = received.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(
        lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      return { status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
    },
  };
}

/** SIGTERM with a registration half sent; returns the answer it still gets and the new client's id. */
async function shutDownDuringRegistration(server: ServerProcess): Promise<string> {
  const url = await server.listening;
  const port = Number(new URL(url).port);
  const registration = JSON.stringify({
    client_name: 'Registered while stopping',
    redirect_uris: ['http://127.0.0.1:9/callback'],
  });
  const request = await halfSentPost(url, '/register', registration, 20);
  // Fastify has seen the request (it logs "incoming request" when it routes it) before the signal is sent.
  await server.logged('incoming request');

  server.child.kill('SIGTERM');
  await server.logged('shutting down');
  assert.ok(await refusesConnections(port), 'new connections are refused once shutdown has begun');
  assert.equal(server.child.exitCode, null, 'the process waits for the request under way');

  const response = await request.finish();
  assert.equal(response.status, 201, response.body);
  assert.equal(response.headers.connection, 'close');
  const clientId = (JSON.parse(response.body) as { client_id: string }).client_id;
  assert.ok(clientId);

  assert.deepEqual(await server.exited, { code: 0, signal: null });
  const logged = server.logs().map((l) => l.msg);
  assert.ok(logged.indexOf('stopped') > logged.indexOf('shutting down'), 'the database was closed');
  return clientId;
}

describe('graceful shutdown on SIGTERM', () => {
  it('finishes a request under way, refuses new connections, closes the embedded database and exits 0', async () => {
    const dir = await tempDir('latchkey-shutdown-');
    cleanups.push(dir.remove);
    const dataDir = join(dir.path, 'data');
    const server = spawnServer({ env: { DATA_DIR: dataDir } });
    const clientId = await shutDownDuringRegistration(server);

    assert.ok(!existsSync(join(dataDir, LOCK_FILE)), 'the lock is released');
    assert.ok(!existsSync(join(dataDir, SOCKET_FILE)), 'the socket is removed');
    const db = await openEmbedded({ dataDir });
    try {
      const client = await db.prisma.client.findUnique({ where: { clientId } });
      assert.equal(client?.name, 'Registered while stopping', 'the write of the last request was kept');
    } finally {
      await db.close();
    }
  });

  it('finishes a request under way, refuses new connections, closes its Postgres pool and exits 0', async () => {
    const database = await createPostgresDatabase();
    cleanups.push(database.drop);
    const server = spawnServer({ env: { DATABASE_URL: database.url } });
    const clientId = await shutDownDuringRegistration(server);

    const c = new pg.Client({ connectionString: database.url });
    await c.connect();
    try {
      const rows = await c.query('SELECT name FROM clients WHERE client_id = $1', [clientId]);
      assert.equal(rows.rows[0]?.name, 'Registered while stopping');
    } finally {
      await c.end();
    }
  });
});
