// Fastify adapter: serves the protected resource metadata and offers a hook that answers challenges and sets
// `request.latchkeyAuth` (and `request.raw.auth`, the MCP SDK's AuthInfo). Type-only imports: the kit never loads Fastify itself.
import type { IncomingMessage } from 'node:http';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { toAuthInfo } from './express.ts';
import {
  METADATA_HEADERS,
  METADATA_PREFLIGHT_HEADERS,
  type ProtectedResourceMetadata,
  protectedResourceMetadataPaths,
} from './metadata.ts';
import type { LatchkeyAuth, ResourceProtection } from './protect.ts';
import { normalizeResource } from './resource.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller, set by `latchkeyProtect`; null on routes it does not guard. */
    latchkeyAuth: LatchkeyAuth | null;
  }
  interface FastifyInstance {
    /** Hook for `onRequest` (before the body is read) or `preHandler` on protected routes. */
    latchkeyProtect: LatchkeyHook;
  }
}

export type LatchkeyHook = (
  request: FastifyRequest,
  reply: FastifyReply,
) => Promise<FastifyReply | undefined>;

export interface LatchkeyFastifyOptions {
  protection: ResourceProtection;
  metadata: ProtectedResourceMetadata;
}

/** A hook that lets authenticated requests through and answers everything else with the challenge. */
export function createFastifyHook(protection: ResourceProtection): LatchkeyHook {
  return async (request, reply) => {
    const result = await protection.authenticate(request.headers.authorization);
    if (result.ok) {
      request.latchkeyAuth = result.auth;
      // What the MCP SDK's transport reads when handed `request.raw` (`extra.authInfo` in tools, with
      // `extra.upstream` for servers allowed to see the upstream identity).
      (request.raw as IncomingMessage & { auth?: AuthInfo }).auth = toAuthInfo(result.auth);
      return undefined;
    }
    const { status, headers, body } = result.challenge;
    // An async hook that answers must return the reply so Fastify stops there.
    return reply.code(status).headers(headers).send(body);
  };
}

/** GET (HEAD) and CORS preflight routes for the metadata at both well-known locations (RFC 9728 §3). */
export function registerProtectedResourceMetadata(
  app: FastifyInstance,
  metadata: ProtectedResourceMetadata,
): void {
  for (const url of protectedResourceMetadataPaths(metadata.resource)) {
    app.get(url, async (_request, reply) => reply.headers(METADATA_HEADERS).send(metadata));
    app.options(url, async (_request, reply) => reply.code(204).headers(METADATA_PREFLIGHT_HEADERS).send());
  }
}

async function latchkeyPlugin(app: FastifyInstance, options: LatchkeyFastifyOptions): Promise<void> {
  const { protection, metadata } = options;
  if (normalizeResource(protection.resource) !== normalizeResource(metadata.resource)) {
    throw new TypeError(
      `metadata.resource ${metadata.resource} differs from the protected ${protection.resource}`,
    );
  }
  app.decorateRequest('latchkeyAuth', null);
  app.decorate('latchkeyProtect', createFastifyHook(protection));
  registerProtectedResourceMetadata(app, metadata);
}

// What fastify-plugin sets: run in the parent's scope so the decorators reach the caller's routes.
Object.assign(latchkeyPlugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'latchkey-resource-server',
});

/**
 * `app.register(latchkeyResourceServer, { protection, metadata })`, then
 * `app.post('/mcp', { onRequest: app.latchkeyProtect }, handler)`.
 */
export const latchkeyResourceServer: FastifyPluginAsync<LatchkeyFastifyOptions> = latchkeyPlugin;
