// A stand-in MCP endpoint for client tests: it only publishes RFC 9728 protected resource metadata naming Latchkey
// as its authorization server, which is all an MCP client's discovery needs.
import Fastify, { type FastifyInstance } from 'fastify';

/** A stand-in MCP endpoint that publishes RFC 9728 metadata naming Latchkey as its authorization server. */
export async function protectedResource(issuer: string): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify();
  let url = '';
  app.get('/.well-known/oauth-protected-resource/mcp', async () => ({
    resource: url,
    authorization_servers: [issuer],
    scopes_supported: ['mcp'],
    bearer_methods_supported: ['header'],
  }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/mcp`;
  return { app, url };
}
