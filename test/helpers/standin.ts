// What the upstream stand-ins (Plane, GitHub) share: a Fastify app served by one or more plain HTTP listeners on
// 127.0.0.1 that a test can take down (connection refused) and bring back on the same ports, a record of every
// request, and faults a test switches on per endpoint: hang until released (`slow`, for timeouts) or a fixed status.
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

export interface RecordedRequest<E extends string> {
  /** The stand-in's name for the endpoint ('token', 'me', …), or 'unknown'. */
  endpoint: E | 'unknown';
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** The parsed body (form or JSON), or undefined. */
  body: unknown;
  /** Which listener received it ('main', or a second listener's name). */
  via: string;
}

export interface Faults<E extends string> {
  /**
   * Endpoints that hang (no answer) until released (releaseHeld: processed; dropHeld: never processed) or the
   * stand-in closes: `true` = every endpoint. A held request whose caller has gone away is not processed either.
   */
  slow: boolean | E[];
  /** Answer every server-to-server endpoint with this 5xx (false = off). */
  status5xx: number | false;
  /** A fixed status for one endpoint (401 for `me`, 403 for `emails`, …), with a JSON error body. */
  status: Partial<Record<E, number>>;
}

export class StandinHost<E extends string> {
  readonly app: FastifyInstance;
  readonly requests: RecordedRequest<E>[] = [];
  readonly faults: Faults<E> = { slow: false, status5xx: false, status: {} };
  readonly urls: Record<string, string> = {};
  private readonly servers = new Map<string, { server: http.Server; port: number; sockets: Set<Socket> }>();
  private readonly via = new WeakMap<http.IncomingMessage, string>();
  private readonly held = new Set<(drop: boolean) => void>();
  private downNow = false;

  constructor(
    private readonly browserFacing: readonly E[],
    private readonly errorBody: (status: number) => unknown,
  ) {
    this.app = Fastify({ logger: false });
    void this.app.register(formbody);
    this.app.addHook('preHandler', async (request, reply) => this.beforeHandler(request, reply));
  }

  /** Names a route for the record and the faults. */
  endpointOf(request: FastifyRequest): E | 'unknown' {
    return ((request.routeOptions.config as { endpoint?: E } | undefined)?.endpoint ?? 'unknown') as
      | E
      | 'unknown';
  }

  private async beforeHandler(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const endpoint = this.endpointOf(request);
    const url = new URL(request.url, 'http://standin.invalid');
    this.requests.push({
      endpoint,
      method: request.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: Object.fromEntries(
        Object.entries(request.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]),
      ),
      body: request.body,
      via: this.via.get(request.raw) ?? 'main',
    });
    if (endpoint === 'unknown' || this.browserFacing.includes(endpoint)) return;
    const slow = this.faults.slow;
    if (slow === true || (Array.isArray(slow) && slow.includes(endpoint))) {
      const dropped = await new Promise<boolean>((resolve) => {
        const release = (drop: boolean) => {
          this.held.delete(release);
          resolve(drop);
        };
        this.held.add(release);
      });
      // Dropped, down meanwhile, or the caller gave up (its timeout): nothing is processed.
      if (dropped || this.downNow || request.raw.socket.destroyed) {
        request.raw.socket.destroy();
        reply.hijack();
        return;
      }
    }
    const status = this.faults.status[endpoint] ?? (this.faults.status5xx || undefined);
    if (status) await reply.code(status).send(this.errorBody(status));
  }

  /** Starts the listeners: `names` beyond 'main' get their own port (Plane's internal_base_url). */
  async listen(names: string[] = ['main']): Promise<void> {
    await this.app.ready();
    for (const name of names) {
      const sockets = new Set<Socket>();
      const server = http.createServer((req, res) => {
        this.via.set(req, name);
        this.app.routing(req, res);
      });
      server.on('connection', (s) => {
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const port = (server.address() as AddressInfo).port;
      this.servers.set(name, { server, port, sockets });
      this.urls[name] = `http://127.0.0.1:${port}`;
    }
  }

  /** Lets every held (slow) request go on. */
  releaseHeld(): void {
    for (const release of [...this.held]) release(false);
  }

  /** Ends every held (slow) request unprocessed: the answer that came too late, never sent. */
  dropHeld(): void {
    for (const release of [...this.held]) release(true);
  }

  /** Down: every listener refuses connections and open ones are cut. Up: listening again on the same ports. */
  async setDown(down: boolean): Promise<void> {
    if (down === this.downNow) return;
    this.downNow = down;
    for (const { server, port, sockets } of this.servers.values()) {
      if (down) {
        const closed = new Promise((resolve) => server.close(resolve));
        this.dropHeld();
        for (const s of sockets) s.destroy();
        await closed;
      } else {
        server.listen(port, '127.0.0.1');
        await once(server, 'listening');
      }
    }
  }

  /** Requests recorded for one endpoint. */
  recorded(endpoint: E): RecordedRequest<E>[] {
    return this.requests.filter((r) => r.endpoint === endpoint);
  }

  async close(): Promise<void> {
    this.faults.slow = false;
    await this.setDown(true);
    await this.app.close();
  }
}

/** The client credentials of a token request: HTTP Basic, or client_id/client_secret in the body. */
export function clientCredentials(
  request: FastifyRequest,
): { id: string; secret: string | undefined; method: 'basic' | 'post' } | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return undefined;
    return {
      id: decodeURIComponent(decoded.slice(0, i)),
      secret: decodeURIComponent(decoded.slice(i + 1)),
      method: 'basic',
    };
  }
  const body = (request.body ?? {}) as Record<string, unknown>;
  if (typeof body.client_id !== 'string') return undefined;
  return {
    id: body.client_id,
    secret: typeof body.client_secret === 'string' ? body.client_secret : undefined,
    method: 'post',
  };
}

/** The bearer token of an API request (`Bearer x`, or GitHub's older `token x`). */
export function bearer(request: FastifyRequest): string | undefined {
  const m = /^(?:bearer|token) (.+)$/i.exec(request.headers.authorization ?? '');
  return m?.[1];
}
