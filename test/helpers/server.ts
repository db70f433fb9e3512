// A real Latchkey listener on 127.0.0.1 over a fresh migrated database, for end-to-end tests.
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { type AppDeps, buildApp } from '../../src/app.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { type Clock, ManualClock } from '../../src/lib/clock.ts';
import { hashSecret, randomToken } from '../../src/lib/crypto.ts';
import { createStores, type Stores } from '../../src/store/index.ts';
import { basicAuth } from './basic-auth.ts';
import { type DbKind, migratedDatabase, type TestDatabase } from './db.ts';
import { freePort } from './net.ts';

export { freePort };

export interface TestServer {
  url: string;
  app: FastifyInstance;
  config: Config;
  clock: ManualClock;
  stores: Stores;
  database: TestDatabase;
  close(): Promise<void>;
}

export interface TestServerOptions {
  env?: Record<string, string>;
  clock?: Clock;
  /** Reuse a database (e.g. two instances on one Postgres); it is not cleaned up by close(). */
  database?: TestDatabase;
  /** CIMD fetch settings passed to buildApp (resolver, trusted CAs, limits, transport). */
  cimd?: AppDeps['cimd'];
  /** The sign-in methods the app offers (default: the password form). */
  signInMethods?: AppDeps['signInMethods'];
  /** Listen on this port (picked with freePort beforehand, when an upstream must know the issuer first). */
  port?: number;
  /** A pino logger (e.g. captureLogs().logger) instead of silence. */
  logger?: AppDeps['logger'];
  /** buildApp's upstreamFetch (route provider calls elsewhere). */
  upstreamFetch?: AppDeps['upstreamFetch'];
}

export async function startServer(kind: DbKind, options: TestServerOptions = {}): Promise<TestServer> {
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const config = loadConfig({ ISSUER: url, PORT: String(port), LOG_LEVEL: 'silent', ...options.env });
  const database = options.database ?? (await migratedDatabase(kind));
  const clock = options.clock instanceof ManualClock ? options.clock : new ManualClock();
  let app: TestServer['app'] | undefined;
  try {
    app = await buildApp({
      config,
      db: database.db,
      clock: options.clock ?? clock,
      ...(options.cimd && { cimd: options.cimd }),
      ...(options.signInMethods && { signInMethods: options.signInMethods }),
      ...(options.logger && { logger: options.logger }),
      ...(options.upstreamFetch && { upstreamFetch: options.upstreamFetch }),
    });
    await app.listen({ port, host: '127.0.0.1' });
  } catch (err) {
    // What was started (the app's notification listener and timers, the database) would keep the test file's
    // process alive, and the runner would wait on it forever instead of reporting the failure.
    await app?.close().catch(() => {});
    if (!options.database) await database.cleanup().catch(() => {});
    throw err;
  }
  return {
    url,
    app,
    config,
    clock,
    stores: createStores(database.db),
    database,
    async close() {
      await app.close();
      if (!options.database) await database.cleanup();
    },
  };
}

export const TEST_PASSWORD = 'correct horse battery staple';

/** Creates a user, returning its email. */
export async function addUser(
  stores: Stores,
  email = `user-${randomToken(4).toLowerCase()}@example.com`,
): Promise<string> {
  await stores.users.create({ email, name: 'Test User', password: TEST_PASSWORD });
  return email;
}

export interface TestResourceServer {
  uri: string;
  clientId: string;
  clientSecret: string;
}

export async function addResourceServer(
  stores: Stores,
  uri: string,
  name = 'Test MCP server',
): Promise<TestResourceServer> {
  const clientId = `rs_${randomToken(12)}`;
  const clientSecret = randomToken(32);
  await stores.resourceServers.create({ uri, name, clientId, secretHash: hashSecret(clientSecret) });
  return { uri, clientId, clientSecret };
}

export interface TestClient {
  clientId: string;
  clientSecret: string | undefined;
  redirectUri: string;
}

export async function addClient(
  stores: Stores,
  options: {
    redirectUris?: string[];
    authMethod?: 'none' | 'client_secret_post' | 'client_secret_basic';
    grantTypes?: string[];
    name?: string;
  } = {},
): Promise<TestClient> {
  const redirectUris = options.redirectUris ?? ['http://127.0.0.1:9/callback'];
  const authMethod = options.authMethod ?? 'none';
  const clientId = randomToken(16);
  const clientSecret = authMethod === 'none' ? undefined : randomToken(32);
  await stores.clients.create({
    clientId,
    kind: 'OPERATOR',
    name: options.name ?? 'Test App',
    redirectUris,
    grantTypes: options.grantTypes ?? ['authorization_code', 'refresh_token'],
    responseTypes: ['code'],
    tokenEndpointAuthMethod: authMethod,
    secretHash: clientSecret ? hashSecret(clientSecret) : null,
  });
  return { clientId, clientSecret, redirectUri: redirectUris[0]! };
}

/** Asks /introspect about a token as the resource server `rs` (client_secret_basic). */
export async function introspect(
  issuer: string,
  rs: TestResourceServer,
  token: string,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${issuer}/introspect`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: basicAuth(rs.clientId, rs.clientSecret),
    },
    body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
  });
  assert.equal(res.status, 200);
  return (await res.json()) as Record<string, unknown>;
}
