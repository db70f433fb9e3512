// Express adapter, written against node:http types only so it also fits Connect-style servers and never loads
// Express: a middleware serving the protected resource metadata, and one that sets `req.auth` in the shape the
// MCP SDK's StreamableHTTPServerTransport passes to tool handlers as `extra.authInfo`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import {
  METADATA_HEADERS,
  METADATA_PREFLIGHT_HEADERS,
  type ProtectedResourceMetadata,
  protectedResourceMetadataPaths,
} from './metadata.ts';
import type { LatchkeyAuth, ResourceProtection } from './protect.ts';

export type NextFunction = (err?: unknown) => void;

export interface LatchkeyRequest extends IncomingMessage {
  /** Set by `expressAuthMiddleware`: what the MCP SDK reads. */
  auth?: AuthInfo;
  /** Set by `expressAuthMiddleware`: the full introspection answer. */
  latchkeyAuth?: LatchkeyAuth;
  /** Express sets this when a router is mounted under a path. */
  originalUrl?: string;
}

export type LatchkeyMiddleware = (req: LatchkeyRequest, res: ServerResponse, next: NextFunction) => void;

/** Serves the metadata at both well-known locations (RFC 9728 §3); mount it at the application root. */
export function expressMetadataMiddleware(metadata: ProtectedResourceMetadata): LatchkeyMiddleware {
  const paths = new Set(protectedResourceMetadataPaths(metadata.resource));
  const json = JSON.stringify(metadata);
  return (req, res, next) => {
    const pathname = new URL(req.originalUrl ?? req.url ?? '/', 'http://localhost').pathname;
    if (!paths.has(pathname)) return next();
    if (req.method === 'OPTIONS') return send(res, 204, METADATA_PREFLIGHT_HEADERS);
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    send(
      res,
      200,
      { ...METADATA_HEADERS, 'content-type': 'application/json; charset=utf-8' },
      json,
      req.method,
    );
  };
}

/** Lets authenticated requests through with `req.auth` set; answers everything else with the challenge. */
export function expressAuthMiddleware(protection: ResourceProtection): LatchkeyMiddleware {
  return (req, res, next) => {
    protection.authenticate(req.headers.authorization).then((result) => {
      if (result.ok) {
        req.latchkeyAuth = result.auth;
        req.auth = toAuthInfo(result.auth);
        return next();
      }
      const { status, headers, body } = result.challenge;
      send(
        res,
        status,
        { ...headers, 'content-type': 'application/json; charset=utf-8' },
        JSON.stringify(body),
      );
    }, next);
  };
}

/**
 * The MCP SDK's view of the caller; Latchkey-specific claims go in `extra` (`extra.upstream`: the upstream identity,
 * for resource servers allowed to see it). Also for Fastify: `toAuthInfo(request.latchkeyAuth)`.
 */
export function toAuthInfo(auth: LatchkeyAuth): AuthInfo {
  const extra: Record<string, unknown> = { sub: auth.sub, aud: auth.aud, iss: auth.iss, iat: auth.iat };
  if (auth.username !== undefined) extra.username = auth.username;
  if (auth.upstream !== undefined) extra.upstream = auth.upstream;
  return {
    token: auth.token,
    clientId: auth.clientId,
    scopes: auth.scopes,
    expiresAt: auth.exp,
    resource: new URL(auth.resource),
    extra,
  };
}

function send(
  res: ServerResponse,
  status: number,
  headers: Readonly<Record<string, string>>,
  body?: string,
  method?: string,
): void {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  if (body !== undefined) res.setHeader('content-length', Buffer.byteLength(body));
  res.end(method === 'HEAD' ? undefined : body);
}
