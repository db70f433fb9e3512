// The stores: the only code that touches Prisma. Routes and services receive them through the AppContext.
import type { StoreDatabase } from '../db/database.ts';
import { accountStore } from './accounts.ts';
import { auditStore } from './audit.ts';
import { clientStore } from './clients.ts';
import { grantStore } from './grants.ts';
import { introspectionStore } from './introspection.ts';
import { rateLimitStore } from './rate-limits.ts';
import { resourceServerStore } from './resource-servers.ts';
import { sessionStore } from './sessions.ts';
import { settingStore, tokenTagSource } from './settings.ts';
import { tokenStore } from './tokens.ts';
import { traceStore } from './traces.ts';
import { upstreamStore } from './upstream.ts';
import { upstreamTokenStore } from './upstream-tokens.ts';
import { userStore } from './users.ts';

/** Every store over `db`: Prisma, and the driver's own query for the raw statements of the hot paths. */
export function createStores(db: StoreDatabase) {
  const { prisma } = db;
  // One read of the token tag key for every store that mints tokens (src/lib/token-tags.ts).
  const tokenTags = tokenTagSource(prisma);
  return {
    tokenTags,
    users: userStore(prisma),
    accounts: accountStore(prisma),
    clients: clientStore(prisma),
    resourceServers: resourceServerStore(prisma),
    rateLimits: rateLimitStore(prisma),
    sessions: sessionStore(prisma),
    grants: grantStore(prisma, tokenTags),
    tokens: tokenStore(db, tokenTags),
    introspection: introspectionStore(db),
    traces: traceStore(prisma),
    settings: settingStore(prisma),
    upstream: upstreamStore(prisma),
    upstreamTokens: upstreamTokenStore(prisma),
    audit: auditStore(prisma),
  };
}

export type Stores = ReturnType<typeof createStores>;
