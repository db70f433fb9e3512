// The server options that come from configuration (README "Security notes"): whose X-Forwarded-For to believe, and
// how long and how much a client may take.
import { type ServerOptions, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyServerOptions } from 'fastify';
import type { Config, TrustProxy } from './config.ts';
import { invalidRequest } from './oauth/errors.ts';

type Options = FastifyServerOptions & { http: ServerOptions };

/**
 * TRUST_PROXY as a trust function for proxy-addr (through Fastify). A hop count n believes the n nearest hops (the
 * peer is hop 0), so the address the nearest untrusted hop connected from is the client's, whatever a client wrote
 * into X-Forwarded-For itself. (Fastify 5 takes a bare number as "trust nobody", hence the function.)
 */
export function trustProxyOption(trust: TrustProxy): FastifyServerOptions['trustProxy'] {
  if (typeof trust === 'number') return trust === 0 ? false : (_address: string, hop: number) => hop < trust;
  return trust;
}

export function serverOptions(
  config: Pick<
    Config,
    | 'trustProxy'
    | 'headersTimeout'
    | 'requestTimeout'
    | 'connectionTimeout'
    | 'keepAliveTimeout'
    | 'bodyLimit'
  >,
): Options {
  // A client that never finishes its headers or body, or keeps an idle connection, must not hold a socket
  // forever: Node answers 408 and closes the connection past the header and request limits.
  const headersTimeout = config.headersTimeout * 1000;
  const requestTimeout = config.requestTimeout * 1000;
  return {
    trustProxy: trustProxyOption(config.trustProxy),
    clientErrorHandler: answerClientError,
    // The input schemas (src/web/input.ts) bound values with type-specific keywords and no `type`, on purpose, so
    // that Ajv coerces nothing; its strict mode would log a warning for each such keyword.
    ajv: { customOptions: { strictTypes: false } },
    bodyLimit: config.bodyLimit,
    connectionTimeout: config.connectionTimeout * 1000,
    keepAliveTimeout: config.keepAliveTimeout * 1000,
    requestTimeout,
    http: {
      headersTimeout,
      requestTimeout,
      // Node checks the two limits above on this interval (30 s by default, which would let a slow client hold
      // a socket up to that much longer than configured): a quarter of the header limit, at most one second.
      connectionsCheckingInterval: Math.min(1000, Math.max(50, headersTimeout / 4)),
    },
  };
}

/**
 * Requests Node cannot even parse (headers too large, a malformed request line, too slow) are answered here, before
 * any route: a standard error body like every other refusal, then the connection is closed.
 */
function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, description] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'the request was not received in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'the request headers are too large']
        : [400, 'the request could not be read'];
  const body = JSON.stringify(invalidRequest(description).toJSON());
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
