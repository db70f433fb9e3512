// TCP on 127.0.0.1 for tests: a free port, whether something listens, and a proxy a test can cut.
import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** Whether a listener could take 127.0.0.1:port now (it is released at once); 0 asks the kernel for one. */
async function tryListen(port: number): Promise<number | undefined> {
  const server = net.createServer();
  server.unref();
  const listening = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (!listening) return undefined;
  const taken = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return taken;
}

/** The kernel's range of ports for outgoing connections (Linux), or its default. */
function ephemeralLow(): number {
  try {
    return (
      Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768
    );
  } catch {
    return 32768;
  }
}

/**
 * A port nothing listens on right now, for a listener started a little later (a server whose issuer must be known
 * first). It is picked below the kernel's range for outgoing connections: a port from that range, released, can be
 * taken by any connection opened meanwhile (another test file's database pool) as its local port, and the listen
 * then fails with EADDRINUSE (seen in CI).
 */
export async function freePort(): Promise<number> {
  const low = 10_000;
  const high = ephemeralLow() - 1;
  for (let i = 0; high > low && i < 100; i++) {
    const port = await tryListen(randomInt(low, high + 1));
    if (port !== undefined) return port;
  }
  const kernelPick = await tryListen(0);
  if (kernelPick === undefined) throw new Error('no free TCP port on 127.0.0.1');
  return kernelPick;
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * A TCP proxy on 127.0.0.1 to `target`, which a test can cut (destroying every open connection, as a network failure
 * would) and restore on the same port. Every connection it is offered, piped or dropped, is an event a test can wait
 * on (nextConnection), so a test learns that the server tried again instead of guessing how long that takes.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly waiters = new Set<(outcome: 'piped' | 'dropped') => void>();
  private isCut = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async open(): Promise<void> {
    this.isCut = false;
    if (this.server) return;
    const server = net.createServer((client) => {
      // While cut, the port stays ours (so no other listener can take it) but every connection is dropped.
      if (this.isCut) {
        client.destroy();
        this.offered('dropped');
        return;
      }
      const upstream = net.connect(this.targetPort, this.targetHost);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
      this.offered('piped');
    });
    server.listen(this.port, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Drops every connection, and every new one until open() is called again. */
  async cut(): Promise<void> {
    this.isCut = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Stops listening altogether. */
  async close(): Promise<void> {
    await this.cut();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  /** Resolves when the proxy is next offered a connection (with what it did with it); rejects after `timeoutMs`. */
  nextConnection(timeoutMs = 15_000): Promise<'piped' | 'dropped'> {
    return new Promise((resolve, reject) => {
      const done = (outcome: 'piped' | 'dropped') => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(outcome);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(done);
        reject(new Error(`no connection reached the proxy within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(done);
    });
  }

  get connections(): number {
    return this.sockets.size;
  }

  private offered(outcome: 'piped' | 'dropped'): void {
    for (const w of [...this.waiters]) w(outcome);
  }
}

/**
 * Resolves true once 127.0.0.1:port refuses connections, trying at most `attempts` times. A connection still accepted
 * is held until the server closes it (Node's http server closes idle connections when it stops listening), and only
 * then is the port tried again: each step waits on a socket event, never on a sleep.
 */
export async function refusesConnections(port: number, attempts = 5, stepMs = 10_000): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    const socket = net.connect(port, '127.0.0.1');
    const accepted = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('error', () => resolve(false));
    });
    if (!accepted) return true;
    socket.on('error', () => {});
    let timer: NodeJS.Timeout | undefined;
    // Not events.once: it rejects on 'error', and a server that stops listening may reset this very connection.
    await Promise.race([
      new Promise((resolve) => socket.once('close', resolve)),
      new Promise((resolve) => {
        timer = setTimeout(resolve, stepMs);
      }),
    ]);
    clearTimeout(timer);
    socket.destroy();
  }
  return false;
}
