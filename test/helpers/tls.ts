// TLS for tests: a self-signed certificate generated with openssl, and an https server on 127.0.0.1 that serves
// Client ID Metadata Documents from a table of paths. Latchkey trusts the certificate through `cimd.ca`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  key: string;
  cert: string;
}

/** A self-signed certificate for localhost, client.test, 127.0.0.1 and ::1 (openssl, valid two days). */
export function generateCertificate(): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-tls-'));
  try {
    const r = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,DNS:client.test,IP:127.0.0.1,IP:::1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ]);
    assert.equal(r.status, 0, `openssl failed: ${r.stderr?.toString()}`);
    return {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * An https server on 127.0.0.1 publishing JSON documents by path, counting requests per path. `urlFor(path)`
 * names a document under `hostname` (a name the certificate covers, e.g. client.test resolved by an injected
 * lookup, or 127.0.0.1 itself).
 */
export class HttpsDocumentHost {
  readonly documents = new Map<string, unknown>();
  readonly hits = new Map<string, number>();
  private server: https.Server | undefined;

  constructor(
    private readonly certificate: TestCertificate,
    readonly hostname = 'client.test',
  ) {}

  async start(): Promise<void> {
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '').split('?')[0]!;
      this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
      if (!this.documents.has(path)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
      res.end(JSON.stringify(this.documents.get(path)));
    };
    const server = https.createServer(this.certificate, handle);
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  }

  get port(): number {
    assert.ok(this.server, 'the document host is not started');
    return (this.server.address() as AddressInfo).port;
  }

  urlFor(path: string): string {
    return `https://${this.hostname}:${this.port}${path}`;
  }

  /** Publishes `document(url)` at `path` and returns the URL (the CIMD client_id). */
  publish(path: string, document: (url: string) => unknown): string {
    const url = this.urlFor(path);
    this.documents.set(path, document(url));
    return url;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A resolver (for `cimd.lookup`) that answers 127.0.0.1 for `hostname` and fails for everything else. */
export function loopbackLookup(hostname: string) {
  return async (name: string): Promise<{ address: string; family: 4 }[]> => {
    if (name !== hostname) throw Object.assign(new Error(`no such host ${name}`), { code: 'ENOTFOUND' });
    return [{ address: '127.0.0.1', family: 4 }];
  };
}
