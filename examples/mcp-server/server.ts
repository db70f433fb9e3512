// An MCP server (official SDK, streamable HTTP over Express) protected by Latchkey's resource-server kit.
// `createMcpApp` builds the app and never listens; running this file directly reads the environment and listens.
// In your own project, import the kit from 'latchkey/resource-server' instead of the relative path below.

import { realpathSync } from 'node:fs';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import {
  type ClientAuthMethod,
  createIntrospectionVerifier,
  createProtectedResourceMetadata,
  createUpstreamTokenClient,
  expressAuthMiddleware,
  expressMetadataMiddleware,
  type IntrospectionVerifier,
  type ProtectedResourceMetadata,
  protectResource,
  type ResourceProtection,
} from '../../src/resource-server/index.ts';
import { type PlaneToolOptions, registerPlaneTools } from './plane.ts';

export interface McpAppOptions {
  /** The canonical MCP endpoint URL clients use, and the audience Latchkey binds tokens to. */
  publicUrl: string;
  /** Latchkey's issuer (its `ISSUER`), published in the protected resource metadata. */
  issuer: string;
  /** Where this server calls /introspect; may differ from the issuer (e.g. an internal URL in docker compose). */
  introspectionUrl?: string;
  /** Credentials from `latchkey resource add <publicUrl>`. */
  clientId: string;
  clientSecret: string;
  authMethod?: ClientAuthMethod;
  /** Scopes every request needs. Default `['mcp']`, Latchkey's default scope. */
  requiredScopes?: string[];
  /** Seconds a positive introspection answer is reused; 0 makes revocation take effect on the next request. */
  cacheTtlSeconds?: number;
  fetch?: typeof fetch;
  /** Where operational messages go (never tokens). Default: console.error. */
  log?: (message: string) => void;
  /** The `plane_me` tool: Plane's API URL (and Latchkey's provider id for Plane, default `plane`). */
  plane?: { apiUrl: string; provider?: string };
  /** Where this server asks for upstream tokens (RFC 8693 exchange). Default `$issuer/token`. */
  tokenUrl?: string;
}

export interface McpApp {
  app: Express;
  verifier: IntrospectionVerifier;
  protection: ResourceProtection;
  metadata: ProtectedResourceMetadata;
}

/** The MCP server for one request: stateless, so every POST gets its own server and transport. */
export function buildMcpServer(plane?: PlaneToolOptions): McpServer {
  const server = new McpServer({ name: 'latchkey-example', version: '0.1.0' });
  server.registerTool(
    'whoami',
    {
      title: 'Who am I',
      description: 'Shows who the access token belongs to, which client holds it, and what it may do.',
      annotations: { readOnlyHint: true },
    },
    async (extra) => {
      const auth = extra.authInfo;
      const who = {
        sub: auth?.extra?.sub,
        username: auth?.extra?.username,
        // Only when Latchkey lets this server see the upstream sign-in (`--upstream-claims`).
        upstream: auth?.extra?.upstream,
        clientId: auth?.clientId,
        scopes: auth?.scopes ?? [],
        expiresAt: auth?.expiresAt ? new Date(auth.expiresAt * 1000).toISOString() : undefined,
      };
      return { content: [{ type: 'text', text: JSON.stringify(who, null, 2) }] };
    },
  );
  server.registerTool(
    'add',
    {
      title: 'Add',
      description: 'Adds two numbers.',
      inputSchema: { a: z.number().describe('first addend'), b: z.number().describe('second addend') },
      annotations: { readOnlyHint: true },
    },
    async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }),
  );
  if (plane) registerPlaneTools(server, plane);
  return server;
}

export function createMcpApp(options: McpAppOptions): McpApp {
  const log = options.log ?? ((message: string) => console.error(message));
  const verifier = createIntrospectionVerifier({
    introspectionEndpoint: options.introspectionUrl ?? `${options.issuer.replace(/\/$/, '')}/introspect`,
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    authMethod: options.authMethod,
    cacheTtlSeconds: options.cacheTtlSeconds,
    fetch: options.fetch,
  });
  const plane: PlaneToolOptions | undefined = options.plane && {
    ...options.plane,
    tokens: createUpstreamTokenClient({
      tokenEndpoint: options.tokenUrl ?? `${options.issuer.replace(/\/$/, '')}/token`,
      clientId: options.clientId,
      clientSecret: options.clientSecret,
      authMethod: options.authMethod,
      fetch: options.fetch,
    }),
    fetch: options.fetch,
  };
  const requiredScopes = options.requiredScopes ?? ['mcp'];
  const protection = protectResource({
    resource: options.publicUrl,
    requiredScopes,
    verifier,
    onError: (err) => log(`token introspection failed: ${err instanceof Error ? err.message : String(err)}`),
  });
  const metadata = createProtectedResourceMetadata({
    resource: options.publicUrl,
    issuer: options.issuer,
    scopesSupported: requiredScopes,
    resourceName: 'Latchkey example MCP server',
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(expressMetadataMiddleware(metadata));

  const mcpPath = new URL(options.publicUrl).pathname;
  const requireAuth = expressAuthMiddleware(protection);
  // The token is checked before the body is read.
  app.post(mcpPath, requireAuth, express.json({ limit: '1mb' }), async (req: Request, res: Response) => {
    const server = buildMcpServer(plane);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } catch (err) {
      log(`MCP request failed: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) {
        res
          .status(500)
          .json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null });
      }
    }
  });
  // Stateless: no standalone SSE stream and no session to delete (MCP streamable HTTP allows 405 for both).
  const methodNotAllowed = (_req: Request, res: Response) => {
    res
      .status(405)
      .set('allow', 'POST')
      .json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
  };
  app.get(mcpPath, requireAuth, methodNotAllowed);
  app.delete(mcpPath, requireAuth, methodNotAllowed);

  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const status = (err as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      res.status(status).json({ jsonrpc: '2.0', error: { code: -32700, message: 'Bad request' }, id: null });
      return;
    }
    log(`unhandled error: ${err instanceof Error ? err.message : String(err)}`);
    res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null });
  });
  return { app, verifier, protection, metadata };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
  }
}

export interface McpServerConfig {
  port: number;
  host: string;
  app: McpAppOptions;
}

/** Reads the environment; fails naming the variable. */
export function loadMcpServerConfig(env: NodeJS.ProcessEnv): McpServerConfig {
  const get = (name: string) => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const url = (name: string, fallback?: string) => {
    const v = get(name) ?? fallback;
    if (v === undefined) throw new ConfigError(name, 'is required');
    if (!URL.canParse(v) || !/^https?:$/.test(new URL(v).protocol)) {
      throw new ConfigError(name, `must be an absolute http(s) URL, got "${v}"`);
    }
    return v;
  };
  const required = (name: string) => {
    const v = get(name);
    if (v === undefined)
      throw new ConfigError(name, 'is required (from `latchkey resource add <MCP_PUBLIC_URL>`)');
    return v;
  };
  const portText = get('PORT') ?? '3001';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535)
    throw new ConfigError('PORT', `must be a port number, got "${portText}"`);
  const issuer = url('LATCHKEY_ISSUER', 'http://localhost:3000').replace(/\/$/, '');
  const authMethod = get('INTROSPECTION_AUTH_METHOD') ?? 'client_secret_basic';
  if (authMethod !== 'client_secret_basic' && authMethod !== 'client_secret_post') {
    throw new ConfigError('INTROSPECTION_AUTH_METHOD', 'must be client_secret_basic or client_secret_post');
  }
  const ttlText = get('INTROSPECTION_CACHE_TTL');
  const cacheTtlSeconds = ttlText === undefined ? undefined : Number(ttlText);
  if (ttlText !== undefined && !/^\d+$/.test(ttlText)) {
    throw new ConfigError('INTROSPECTION_CACHE_TTL', `must be a whole number of seconds, got "${ttlText}"`);
  }
  // Unset → Latchkey's default scope; set but empty → no scope required.
  const scopesText = env.REQUIRED_SCOPES;
  const requiredScopes = scopesText === undefined ? ['mcp'] : scopesText.split(/[\s,]+/).filter(Boolean);
  const publicUrl = url('MCP_PUBLIC_URL', `http://localhost:${port}/mcp`);
  const planeApi = get('PLANE_API_URL');
  if (new URL(publicUrl).hash) throw new ConfigError('MCP_PUBLIC_URL', 'must not have a fragment');
  return {
    port,
    host: get('HOST') ?? '127.0.0.1',
    app: {
      publicUrl,
      issuer,
      introspectionUrl: url('LATCHKEY_INTROSPECTION_URL', `${issuer}/introspect`),
      clientId: required('INTROSPECTION_CLIENT_ID'),
      clientSecret: required('INTROSPECTION_CLIENT_SECRET'),
      authMethod,
      requiredScopes,
      cacheTtlSeconds,
      tokenUrl: url('LATCHKEY_TOKEN_URL', `${issuer}/token`),
      ...(planeApi && {
        plane: { apiUrl: url('PLANE_API_URL'), provider: get('PLANE_PROVIDER_ID') ?? 'plane' },
      }),
    },
  };
}

async function main(): Promise<void> {
  let config: McpServerConfig;
  try {
    config = loadMcpServerConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`configuration error: ${err.message}`);
    process.exit(1);
  }
  const { app } = createMcpApp(config.app);
  const server: Server = app.listen(config.port, config.host, () => {
    console.error(`MCP server for ${config.app.publicUrl} listening on ${config.host}:${config.port}`);
    console.error(
      `protected resource metadata names ${config.app.issuer}; introspecting at ${config.app.introspectionUrl}`,
    );
  });
  server.on('error', (err) => {
    console.error(`cannot listen: ${err.message}`);
    process.exit(1);
  });
  const shutdown = () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), 5_000).unref();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) await main();
