// What a browser test needs around Latchkey: Debian's Chromium (never a downloaded one), a proxy that gives the
// browser fixed origins, a client's callback server, and an audit of every page Latchkey served.
//
// Why a proxy: the listener and the callback server take free ports, which would show in the pages (footer,
// "Returns you to") and change every committed screenshot on every run. The browser instead talks to fixed
// origins (the issuer is http://localhost:3000, the default `ISSUER`) and this proxy, on 127.0.0.1, forwards
// each to its real port. Any other host is refused, so the browser cannot reach beyond loopback.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return (server.address() as AddressInfo).port;
}

async function shut(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface HostProxy {
  url: string;
  close(): Promise<void>;
}

/** A forward HTTP proxy that sends each `host:port` in `routes` to that port on 127.0.0.1, and nothing else. */
export async function startHostProxy(routes: Record<string, number>): Promise<HostProxy> {
  const server = createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end();
      return;
    }
    const port = target.protocol === 'http:' ? routes[target.host] : undefined;
    if (port === undefined) {
      res
        .writeHead(502, { 'content-type': 'text/plain' })
        .end(`the test proxy does not route ${target.host}`);
      return;
    }
    const { 'proxy-connection': _, ...headers } = req.headers;
    const upstream = request(
      { host: '127.0.0.1', port, method: req.method, path: target.pathname + target.search, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  // https (CONNECT) goes nowhere: the browser must stay on loopback.
  server.on('connect', (_req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\n\r\n'));
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, close: () => shut(server) };
}

export interface CallbackServer {
  port: number;
  /**
   * Every request that reached the callback, in order, but the browser's own /favicon.ico: Chromium asks for it on its
   * own time after landing, which on a busy machine can be after the next test has begun.
   */
  received: URL[];
  close(): Promise<void>;
}

/** The client's redirect URI: records each callback and answers "done", as a native app's loopback listener does. */
export async function startCallbackServer(origin: string): Promise<CallbackServer> {
  const received: URL[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname !== '/favicon.ico') received.push(url);
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('done');
  });
  const port = await listen(server);
  return { port, received, close: () => shut(server) };
}

export async function launchChromium(proxy: HostProxy): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    // playwright-core also sends loopback hosts through the proxy (it adds `<-loopback>` to the bypass list).
    proxy: { server: proxy.url },
  });
}

interface AuditedPage {
  url: string;
  status: number;
  headers: Record<string, string>;
  html: string;
}

/**
 * Records every HTML page Latchkey (at `origin`) serves to `page`, with headers and body as sent, and every
 * Content-Security-Policy violation the browser reports on it.
 */
export class PageAudit {
  private readonly pending: Promise<AuditedPage | undefined>[] = [];
  /** Console messages about CSP violations (Chromium reports each one there). */
  readonly cspViolations: string[] = [];

  constructor(
    page: Page,
    private readonly origin: string,
  ) {
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) this.cspViolations.push(message.text());
    });
    page.on('response', (response) => {
      if (response.request().resourceType() !== 'document') return;
      if (!response.url().startsWith(`${this.origin}/`)) return;
      if (response.status() >= 300 && response.status() < 400) return;
      this.pending.push(
        (async () => ({
          url: response.url(),
          status: response.status(),
          headers: await response.allHeaders(),
          html: await response.text(),
        }))(),
      );
    });
  }

  /** The pages seen so far, each checked: framing refused (RFC 7034, CSP frame-ancestors), no script at all. */
  async checkedPages(): Promise<AuditedPage[]> {
    const pages = (await Promise.all(this.pending)).filter((p): p is AuditedPage => p !== undefined);
    assert.ok(pages.length > 0, 'no Latchkey page was seen');
    assert.deepEqual(this.cspViolations, [], 'no Content-Security-Policy violation');
    for (const p of pages) {
      assert.equal(p.headers['x-frame-options'], 'DENY', `x-frame-options on ${p.url}`);
      assert.match(p.headers['content-security-policy'] ?? '', /frame-ancestors 'none'/, `CSP on ${p.url}`);
      assert.doesNotMatch(p.html, /<script/i, `script on ${p.url}`);
      assert.doesNotMatch(p.html, /<[^>]*\son[a-z]+\s*=/i, `inline event handler on ${p.url}`);
    }
    return pages;
  }
}

// axe-core's source, run in the page through the DevTools protocol (page.evaluate): the pages' CSP allows no script,
// and evaluation from DevTools is not subject to it, so the page is checked exactly as served.
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[] }[];
}

/**
 * Runs axe-core (WCAG 2.x A and AA rules, and best practices) on the page as it is now and fails on any serious or
 * critical violation, naming each rule and where it failed. Needs JavaScript enabled in the context.
 */
export async function assertAccessible(page: Page, what: string): Promise<void> {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate<AxeViolation[]>(
    `(async () => {
      const result = await window.axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
        resultTypes: ['violations'],
      });
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
    })()`,
  );
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    serious.map((v) => `${v.impact} ${v.id}: ${v.help} at ${JSON.stringify(v.nodes.map((n) => n.target))}`),
    [],
    `accessibility of ${what}`,
  );
}
