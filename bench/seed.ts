// What the bench's Latchkey rows need, made through Latchkey's own store code (src/store/): a resource server, a
// public client and a user, and on demand authorization codes (PKCE S256), access tokens and refresh tokens, each in
// a grant of its own as the real flow makes them.
import { openPostgres } from '../src/db/database.ts';
import { hashSecret, randomToken } from '../src/lib/crypto.ts';
import { calculateS256Challenge } from '../src/oauth/pkce.ts';
import { createStores, type Stores } from '../src/store/index.ts';

export const RESOURCE = 'https://mcp.example.com/mcp';
export const REDIRECT_URI = 'http://127.0.0.1:9/cb';
export const VERIFIER = 'bench-verifier-bench-verifier-bench-verifier-0123456789';

export interface Seeded {
  /** The public client's client_id. */
  clientId: string;
  /** HTTP Basic credentials of the resource server, for /introspect. */
  introspectAuthorization: string;
  codes(n: number): Promise<string[]>;
  accessTokens(n: number): Promise<string[]>;
  refreshTokens(n: number): Promise<string[]>;
  /**
   * VACUUM (ANALYZE) of the tables minting fills, as pgbench vacuums before its runs: minting tens of thousands of
   * grants between a warm-up and its measured run would otherwise leave autovacuum to clean up after it during that
   * run, a cost of the seeding and not of the requests measured.
   */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** Runs `fn` n times, `width` at a time. */
async function parallel<T>(n: number, width: number, fn: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) {
        next++;
        out.push(await fn());
      }
    }),
  );
  return out;
}

export async function seedLatchkey(databaseUrl: string): Promise<Seeded> {
  const db = openPostgres({ url: databaseUrl, poolSize: 8 });
  const stores: Stores = createStores(db);
  const rsId = `rs_${randomToken(8)}`;
  const rsSecret = randomToken(32);
  const rs = await stores.resourceServers.create({
    uri: RESOURCE,
    name: 'bench',
    clientId: rsId,
    secretHash: hashSecret(rsSecret),
  });
  const clientId = randomToken(16);
  const client = await stores.clients.create({
    clientId,
    kind: 'OPERATOR',
    name: 'bench',
    redirectUris: [REDIRECT_URI],
    grantTypes: ['authorization_code', 'refresh_token'],
    responseTypes: ['code'],
    tokenEndpointAuthMethod: 'none',
  });
  const user = await stores.users.create({ email: `bench-${randomToken(6)}@example.com` });
  const challenge = calculateS256Challenge(VERIFIER);
  const code = () =>
    stores.grants.createAuthorizationCode(
      {
        userId: user.id,
        clientId: client.id,
        resourceServerId: rs.id,
        redirectUri: REDIRECT_URI,
        requestedResource: null,
        codeChallenge: challenge,
        scopes: [],
      },
      3600,
      new Date(),
    );
  // A pair minted from a fresh code, the way the code exchange mints it.
  const pair = async () => {
    const c = await code();
    const now = new Date();
    return stores.tokens.transaction(async (t) => {
      const claim = await t.claimAuthorizationCode(c, now);
      if (claim.kind !== 'claimed') throw new Error(`seeding: code ${claim.kind}`);
      return t.issueTokens(
        claim.code.grant,
        {
          accessScopes: [],
          refreshScopes: [],
          parentRefreshId: null,
          accessTokenTtl: 3600,
          refreshTokenTtl: 30 * 86400,
        },
        now,
      );
    });
  };
  return {
    clientId,
    introspectAuthorization: `Basic ${Buffer.from(`${rsId}:${rsSecret}`).toString('base64')}`,
    codes: (n) => parallel(n, 8, code),
    accessTokens: async (n) => (await parallel(n, 8, pair)).map((p) => p.accessToken),
    refreshTokens: async (n) => (await parallel(n, 8, pair)).map((p) => p.refreshToken!),
    settle: () =>
      db.withConnection((c) =>
        c.exec('VACUUM (ANALYZE) grants, authorization_codes, access_tokens, refresh_tokens'),
      ),
    close: () => db.close(),
  };
}
