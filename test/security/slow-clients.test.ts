// Slow clients (issue 10; README "Security notes"): a client that never finishes its headers or its body, or keeps
// an idle connection, does not hold a socket past the configured limits (HEADERS_TIMEOUT, REQUEST_TIMEOUT,
// KEEP_ALIVE_TIMEOUT, CONNECTION_TIMEOUT). Raw sockets; each test waits for the server to close the connection
// (the socket's close event), never for a fixed time, and asserts nothing about how long it took.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, it } from 'node:test';
import { forEachDatabase } from '../helpers/db.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

/** Opens a raw connection, writes `data`, and resolves with everything the server sent once it closed. */
function untilClosed(url: string, write: (socket: Socket) => void): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => write(socket));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A reset after the answer is a close too.
      if (err.code !== 'ECONNRESET') reject(err);
    });
    socket.on('close', () => resolve(received));
  });
}

forEachDatabase('slow clients', (kind) => {
  let server: TestServer;

  before(async () => {
    server = await startServer(kind, {
      env: { HEADERS_TIMEOUT: '1', REQUEST_TIMEOUT: '2', KEEP_ALIVE_TIMEOUT: '1', CONNECTION_TIMEOUT: '3' },
    });
  });
  after(() => server.close());

  it('closes a connection whose headers never finish, with 408 and a standard error', {
    timeout: 60_000,
  }, async () => {
    const received = await untilClosed(server.url, (s) =>
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: '),
    );
    assert.match(received, /^HTTP\/1\.1 408 /);
    assert.match(received, /"error":"invalid_request"/);
  });

  it('closes a connection whose body never finishes, with 408', { timeout: 60_000 }, async () => {
    const received = await untilClosed(server.url, (s) =>
      s.write(
        'POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
          'Content-Length: 1000\r\n\r\ngrant_type=client_credentials&scope=',
      ),
    );
    assert.match(received, /^HTTP\/1\.1 408 /);
  });

  it('closes an idle kept-alive connection after answering', { timeout: 60_000 }, async () => {
    const received = await untilClosed(server.url, (s) =>
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'),
    );
    assert.match(received, /^HTTP\/1\.1 200 /, 'the request itself was answered');
    assert.match(received, /keep-alive/i, 'and the connection was kept alive, then closed when idle');
  });

  it('closes a connection that never sends a byte', { timeout: 60_000 }, async () => {
    const received = await untilClosed(server.url, () => {});
    assert.ok(!received.startsWith('HTTP/1.1 2'), received);
  });
});
