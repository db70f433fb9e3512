// A real RFC 7662 introspection endpoint on 127.0.0.1 for the kit's tests: a fixed set of tokens, caller
// authentication required (§2.1), `{"active": false}` and nothing else for anything not active (§2.2).
import formbody from '@fastify/formbody';
import Fastify from 'fastify';

export const RS_CLIENT_ID = 'rs_example';
export const RS_CLIENT_SECRET = 'secret: with "odd" chars & spaces';

export interface TokenClaims {
  scope?: string;
  client_id?: string;
  sub?: string;
  username?: string;
  aud?: string | string[];
  iss?: string;
  /** Seconds since the epoch. */
  exp?: number;
  iat?: number;
}

export interface IntrospectionCall {
  token: string | undefined;
  tokenTypeHint: string | undefined;
  /** How the caller authenticated. */
  method: 'client_secret_basic' | 'client_secret_post';
}

export interface FakeIntrospection {
  issuer: string;
  /** The /introspect URL. */
  url: string;
  calls: IntrospectionCall[];
  /** Sets (or with undefined, revokes) a token's claims; `active` follows the presence of claims. */
  setToken(token: string, claims: TokenClaims | undefined): void;
  /** Makes every call fail with this status (or hang `delayMs` first); null restores normal answers. */
  failWith(status: number | null): void;
  delayMs: number;
  /** Answers every call with this body instead (for malformed-response tests); null restores. */
  rawAnswer: unknown;
  close(): Promise<void>;
}

export async function startFakeIntrospection(): Promise<FakeIntrospection> {
  const app = Fastify({ logger: false });
  await app.register(formbody);
  const tokens = new Map<string, TokenClaims>();
  let failure: number | null = null;
  const state = { delayMs: 0, rawAnswer: null as unknown };
  const calls: IntrospectionCall[] = [];

  app.post('/introspect', async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, string | undefined>;
    const method = authenticateCaller(request.headers.authorization, body);
    if (!method) {
      return reply
        .code(401)
        .header('www-authenticate', 'Basic realm="introspect"')
        .send({ error: 'invalid_client', error_description: 'client authentication failed' });
    }
    calls.push({ token: body.token, tokenTypeHint: body.token_type_hint, method });
    if (state.delayMs) await new Promise((r) => setTimeout(r, state.delayMs));
    if (failure !== null) return reply.code(failure).send({ error: 'server_error' });
    reply.header('cache-control', 'no-store');
    if (state.rawAnswer !== null) return reply.send(state.rawAnswer);
    const claims = body.token === undefined ? undefined : tokens.get(body.token);
    if (!claims) return { active: false };
    return { active: true, token_type: 'Bearer', ...claims };
  });

  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  const issuer = `http://127.0.0.1:${port}`;
  return {
    issuer,
    url: `${issuer}/introspect`,
    calls,
    setToken(token, claims) {
      if (claims) tokens.set(token, claims);
      else tokens.delete(token);
    },
    failWith(status) {
      failure = status;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    get rawAnswer() {
      return state.rawAnswer;
    },
    set rawAnswer(v: unknown) {
      state.rawAnswer = v;
    },
    close: () => app.close(),
  };
}

// RFC 6749 §2.3.1: Basic with form-encoded parts, or client_id/client_secret in the body; never both.
function authenticateCaller(
  header: string | undefined,
  body: Record<string, string | undefined>,
): IntrospectionCall['method'] | undefined {
  const inBody = body.client_id !== undefined || body.client_secret !== undefined;
  if (header?.startsWith('Basic ')) {
    if (inBody) return undefined;
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const id = formDecode(decoded.slice(0, colon));
    const secret = formDecode(decoded.slice(colon + 1));
    return id === RS_CLIENT_ID && secret === RS_CLIENT_SECRET ? 'client_secret_basic' : undefined;
  }
  if (header) return undefined;
  return body.client_id === RS_CLIENT_ID && body.client_secret === RS_CLIENT_SECRET
    ? 'client_secret_post'
    : undefined;
}

function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}
