// What every route and service receives: configuration, the database, time, and the stores.
import type { ChangeFeed } from './changes.ts';
import type { Config } from './config.ts';
import type { Database } from './db/database.ts';
import type { Clock } from './lib/clock.ts';
import type { TokenTags } from './lib/token-tags.ts';
import type { Metrics } from './metrics/metrics.ts';
import type { CachedResourceServers } from './oauth/cached-lookups.ts';
import type { ClientResolver } from './oauth/clients.ts';
import type { SignInMethods } from './signin/index.ts';
import type { Stores } from './store/index.ts';
import type { TraceRecorder } from './trace/recorder.ts';
import type { Upstream } from './upstream/index.ts';

export interface AppContext {
  readonly config: Config;
  readonly db: Database;
  readonly clock: Clock;
  readonly stores: Stores;
  /** The deployment's token tag key, read at start: made-up tokens are refused without a lookup. */
  readonly tokenTags: TokenTags;
  /** Finds the client behind a client_id: registered ones in the database, CIMD URLs fetched and cached. */
  readonly clients: ClientResolver;
  /** Resource servers by client_id, for authenticating them: the store, with rows cached until the next change. */
  readonly resourceServers: CachedResourceServers;
  /** Change notifications across instances; caches subscribe, revoking routes flush. */
  readonly changes: ChangeFeed;
  /** The ways a person may sign in, as configured at start; the sign-in page shows them all. */
  readonly signIn: SignInMethods;
  /** Upstream identity providers, the cipher for their tokens, their redirect URIs (empty without federation). */
  readonly upstream: Upstream;
  /** What this instance counts for Prometheus (README: Metrics); does nothing when metrics are off. */
  readonly metrics: Metrics;
  /** Each client's recent protocol steps, queued and written in batches (README: Client traces). */
  readonly traces: TraceRecorder;
}
