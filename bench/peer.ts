// The peer for /token rows of the bench: node-oidc-provider (panva, devDependency 9.13.3) with an in-memory adapter,
// doing the grants Latchkey does for an MCP client: authorization_code with PKCE (S256) for a public client, and
// refresh_token with rotation. Run as its own process by bench/token.ts; prints its port on stdout, and mints
// codes and refresh tokens through the provider's own models when asked over IPC ({ mint: 'code' | 'refresh', n }).
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

import { PEER_CLIENT_ID, PEER_REDIRECT_URI, PEER_VERIFIER } from './peer-constants.ts';

const CHALLENGE = createHash('sha256').update(PEER_VERIFIER).digest('base64url');
const SCOPE = 'api offline_access';
const ACCOUNT = 'bench-user';

// The parts of oidc-provider's models this file uses (the package ships no type declarations).
interface Model {
  save(): Promise<string>;
}
interface GrantModel extends Model {
  addOIDCScope(scope: string): void;
}
interface Models {
  Client: { find(id: string): Promise<unknown> };
  Grant: new (p: { accountId: string; clientId: string }) => GrantModel;
  AuthorizationCode: new (p: Record<string, unknown>) => Model;
  RefreshToken: new (p: Record<string, unknown>) => Model;
}

// An in-memory adapter without a size bound: oidc-provider's own development adapter is an LRU of 1,000 entries,
// which would drop most of the codes and refresh tokens minted ahead of a run.
type Payload = Record<string, unknown> & {
  grantId?: string;
  uid?: string;
  userCode?: string;
  consumed?: number;
};
const stored = new Map<string, Payload>();
const byGrant = new Map<string, string[]>();
class MemoryAdapter {
  constructor(private readonly name: string) {}
  private key(id: string) {
    return `${this.name}:${id}`;
  }
  async upsert(id: string, payload: Payload) {
    stored.set(this.key(id), payload);
    if (payload.grantId) {
      const keys = byGrant.get(payload.grantId) ?? [];
      keys.push(this.key(id));
      byGrant.set(payload.grantId, keys);
    }
  }
  async find(id: string) {
    return stored.get(this.key(id));
  }
  async findByUid(uid: string) {
    for (const [k, v] of stored) if (k.startsWith(`${this.name}:`) && v.uid === uid) return v;
    return undefined;
  }
  async findByUserCode(userCode: string) {
    for (const [k, v] of stored) if (k.startsWith(`${this.name}:`) && v.userCode === userCode) return v;
    return undefined;
  }
  async consume(id: string) {
    const p = stored.get(this.key(id));
    if (p) p.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string) {
    stored.delete(this.key(id));
  }
  async revokeByGrantId(grantId: string) {
    for (const k of byGrant.get(grantId) ?? []) stored.delete(k);
    byGrant.delete(grantId);
  }
}

const provider = new Provider('http://127.0.0.1:1', {
  adapter: MemoryAdapter,
  clients: [
    {
      client_id: PEER_CLIENT_ID,
      redirect_uris: [PEER_REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    },
  ],
  async findAccount(_ctx: unknown, sub: string) {
    return sub === ACCOUNT ? { accountId: sub, claims: async () => ({ sub }) } : undefined;
  },
  scopes: ['openid', 'offline_access', 'api'],
  pkce: { required: () => true },
  issueRefreshToken: () => true,
  rotateRefreshToken: () => true,
  // Codes live an hour, as bench/seed.ts mints Latchkey's: a pool's codes are spent over several rounds (minutes), and
  // with 10 minutes the last round's oldest had expired, refused (and fast) requests counted as the peer's.
  ttl: { AccessToken: 3600, AuthorizationCode: 3600, RefreshToken: 30 * 86400, Grant: 30 * 86400 },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
});
const models = provider as unknown as Models;
const client = await models.Client.find(PEER_CLIENT_ID);

async function newGrant(): Promise<string> {
  const grant = new models.Grant({ accountId: ACCOUNT, clientId: PEER_CLIENT_ID });
  grant.addOIDCScope(SCOPE);
  return grant.save();
}

async function mint(kind: 'code' | 'refresh'): Promise<string> {
  const grantId = await newGrant();
  if (kind === 'code') {
    return new models.AuthorizationCode({
      accountId: ACCOUNT,
      client,
      grantId,
      scope: SCOPE,
      redirectUri: PEER_REDIRECT_URI,
      codeChallenge: CHALLENGE,
      codeChallengeMethod: 'S256',
    }).save();
  }
  return new models.RefreshToken({
    accountId: ACCOUNT,
    client,
    grantId,
    scope: SCOPE,
    gty: 'authorization_code',
    rotations: 0,
  }).save();
}

process.on('message', (m: { mint: 'code' | 'refresh'; n: number }) => {
  void (async () => {
    const out: string[] = [];
    for (let i = 0; i < m.n; i++) out.push(await mint(m.mint));
    process.send?.({ minted: out });
  })();
});

const server = http.createServer(provider.callback());
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
