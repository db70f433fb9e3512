// Shared by the CIMD tests (draft-ietf-oauth-client-id-metadata-document-01). Documents are served by real https
// and http servers on 127.0.0.1 with a certificate generated here; every other address is reached only through
// an injected resolver and a transport that fails the test if it is ever asked to connect, so no test sends a
// packet anywhere but loopback.
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before } from 'node:test';
import type { CimdError, LookupHost, RequestFunction } from '../../../src/oauth/cimd/index.ts';
import { OAuthError } from '../../../src/oauth/errors.ts';
import { generateCertificate, type TestCertificate } from '../../helpers/tls.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Serves documents on 127.0.0.1 from a table of path → handler, counting requests per path. */
export class DocumentServer {
  readonly routes = new Map<string, Handler>();
  readonly hits = new Map<string, number>();
  private server!: http.Server | https.Server;
  origin = '';

  async start(tls: { key: string; cert: string } | undefined): Promise<void> {
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '').split('?')[0]!;
      this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
      const route = this.routes.get(path);
      if (route) route(req, res);
      else res.writeHead(404).end();
    };
    this.server = tls ? https.createServer(tls, handle) : http.createServer(handle);
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.origin = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Serves `body` (a document for the URL by default) at `path` and returns the URL. */
  serve(path: string, body?: unknown, headers: Record<string, string> = {}): string {
    const url = `${this.origin}${path}`;
    this.routes.set(path, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body ?? documentFor(url)));
    });
    return url;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function documentFor(clientId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    client_id: clientId,
    client_name: 'Test MCP Client',
    redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    ...extra,
  };
}

/** A resolver answering from a fixed table; it records every name asked. */
export function fakeLookup(table: Record<string, string[]>): LookupHost & { asked: string[] } {
  const asked: string[] = [];
  const lookup = async (hostname: string) => {
    asked.push(hostname);
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error(`no such host ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({
      address,
      family: address.includes(':') ? (6 as const) : (4 as const),
    }));
  };
  return Object.assign(lookup, { asked });
}

/** A transport that fails the test if a connection is ever attempted. */
export function noConnection(): RequestFunction & { calls: number } {
  const fn = Object.assign(
    () => {
      fn.calls++;
      throw new Error('a connection was attempted');
    },
    { calls: 0 },
  );
  return fn as unknown as RequestFunction & { calls: number };
}

export async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<CimdError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof OAuthError, `expected an OAuthError, got ${String(err)}`);
    assert.equal(err.code, 'invalid_client');
    assert.match(err.description, pattern);
    return err as CimdError;
  }
  assert.fail('expected a rejection');
}

/** An https and an http document server on 127.0.0.1, started before the file's tests and stopped after. */
export function documentServers(): {
  tls: TestCertificate;
  httpsServer: DocumentServer;
  httpServer: DocumentServer;
} {
  const tls = generateCertificate();
  const httpsServer = new DocumentServer();
  const httpServer = new DocumentServer();
  before(async () => {
    await httpsServer.start(tls);
    await httpServer.start(undefined);
  });
  after(async () => {
    await httpsServer.stop();
    await httpServer.stop();
  });
  return { tls, httpsServer, httpServer };
}
