// The ceiling for our stack: a bare Fastify route that parses the same form POST as /introspect and answers a
// fixed JSON document. Run as its own process by bench/introspect.ts; prints its port on stdout.
import formbody from '@fastify/formbody';
import Fastify from 'fastify';

const app = Fastify({ logger: false });
await app.register(formbody);
const answer = { active: true, scope: 'mcp', client_id: 'bench', sub: 'bench', token_type: 'Bearer' };
app.post('/introspect', async (req, reply) => {
  reply.header('cache-control', 'no-store');
  const body = req.body as Record<string, string> | undefined;
  return body?.token ? answer : { active: false };
});
await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`${(app.server.address() as { port: number }).port}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
