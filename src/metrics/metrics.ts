// What Latchkey counts for Prometheus (README: Metrics). Code that decides something calls one method of `Metrics`
// at the decision point; with metrics off (the default) every method does nothing. Each app instance has its own
// registry, so several apps in one process (tests) never share counts.
//
// Label policy: a label value is always one of a fixed, small set (a route pattern, a status code, a grant type
// from the registry, a revocation reason, a sign-in method id from the configuration). No label ever carries a
// token, code, secret, email, address, raw URL or client id: client ids are unbounded (anyone may register one, and
// every CIMD URL is one), so nothing is counted per client.
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Database } from '../db/database.ts';
import { grantTypesSupported } from '../oauth/grants/index.ts';
import type { SweepResult } from '../store/sweep.ts';
import type { RevokeReason } from '../store/tokens.ts';
import { type RouteRecorder, requestMetrics } from './requests.ts';

export type RefreshOutcome = 'rotated' | 'reuse_window';
export type ReplayKind = 'authorization_code' | 'refresh_token';
export type RevokedTarget = 'grant' | 'access_token';
export type SignInResult = 'success' | 'failure' | 'throttled';
export type CimdFetchOutcome = 'fetched' | 'stale_if_error' | 'refused';
export type RegistrationKind = 'dcr' | 'cimd';

export type { RouteRecorder } from './requests.ts';

/** The events Latchkey counts. Every argument is from a bounded set (see the label policy above). */
export interface Metrics {
  readonly enabled: boolean;
  /** Counts the requests of one route pattern; made once per route, when the route is added. */
  routeRecorder(route: string): RouteRecorder;
  /** Counts a request no route matched (route="unmatched"). */
  unmatched: RouteRecorder;
  tokensIssued(grantType: string): void;
  refresh(outcome: RefreshOutcome): void;
  replay(kind: ReplayKind): void;
  revoked(reason: RevokeReason, target: RevokedTarget): void;
  introspection(active: boolean): void;
  introspectionCache(hit: boolean): void;
  registration(kind: RegistrationKind): void;
  cimdFetch(outcome: CimdFetchOutcome): void;
  signIn(method: string, result: SignInResult): void;
  /** One sweeper run: what it removed, or undefined when it failed. */
  sweep(removed: SweepResult | undefined): void;
}

/** Metrics off: nothing is counted, nothing is allocated. */
export const NO_METRICS: Metrics = {
  enabled: false,
  routeRecorder: () => () => {},
  unmatched() {},
  tokensIssued() {},
  refresh() {},
  replay() {},
  revoked() {},
  introspection() {},
  introspectionCache() {},
  registration() {},
  cimdFetch() {},
  signIn() {},
  sweep() {},
};

export interface PrometheusMetrics extends Metrics {
  readonly registry: Registry;
}

type Child = { inc(value?: number): void };

/**
 * A counter with one label whose children only add to a number; the sums reach the prom-client counter when it is
 * scraped (its collect()). A labelled prom-client child hashes its labels on every inc (measured: about 0.1 µs), which
 * the hot path (/introspect) would pay twice per request. Known values are exported as 0 from the start, so a rate
 * over them exists before the first event.
 */
function fastCounter<V extends string>(
  registry: Registry,
  options: { name: string; help: string; label: string },
  known: readonly V[] = [],
): (value: V) => Child {
  const made = new Map<string, { pending: number; inc(value?: number): void }>();
  const counter = new Counter({
    name: options.name,
    help: options.help,
    labelNames: [options.label],
    registers: [registry],
    collect() {
      for (const [value, child] of made) {
        this.inc({ [options.label]: value }, child.pending);
        child.pending = 0;
      }
    },
  });
  const make = (value: string) => {
    const child = {
      pending: 0,
      inc(by = 1) {
        this.pending += by;
      },
    };
    made.set(value, child);
    return child;
  };
  for (const value of known) {
    counter.inc({ [options.label]: value }, 0);
    make(value);
  }
  return (value) => made.get(value) ?? make(value);
}

export function createMetrics(db: Pick<Database, 'poolStats'>): PrometheusMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  const counter = (name: string, help: string, labelNames: string[]) =>
    new Counter({ name, help, labelNames, registers });
  const fast = <V extends string>(name: string, help: string, label: string, known: readonly V[]) =>
    fastCounter<V>(registry, { name, help, label }, known);

  const requests = requestMetrics(registry, {
    count: 'latchkey_http_requests_total',
    duration: 'latchkey_http_request_duration_seconds',
  });
  const tokens = fast(
    'latchkey_tokens_issued_total',
    'Token responses (new tokens, or the same answer again within REFRESH_REUSE_WINDOW), by grant type',
    'grant_type',
    grantTypesSupported(),
  );
  const refreshes = fast<RefreshOutcome>(
    'latchkey_refreshes_total',
    'Refresh token uses answered with tokens: rotated, or the same answer again within REFRESH_REUSE_WINDOW',
    'outcome',
    ['rotated', 'reuse_window'],
  );
  const replays = fast<ReplayKind>(
    'latchkey_replays_detected_total',
    'Spent codes and refresh tokens presented again (their grant is revoked)',
    'kind',
    ['authorization_code', 'refresh_token'],
  );
  const revocations = counter(
    'latchkey_revocations_total',
    'Grants and access tokens revoked by this instance, by reason',
    ['reason', 'target'],
  );
  const introspections = fast(
    'latchkey_introspections_total',
    'Introspection answers to authenticated resource servers',
    'result',
    ['active', 'inactive'],
  );
  const cache = fast(
    'latchkey_introspection_cache_total',
    'Access token lookups of /introspect: answered from memory (hit) or the database (miss)',
    'result',
    ['hit', 'miss'],
  );
  const registrations = fast<RegistrationKind>(
    'latchkey_client_registrations_total',
    'Clients registered: dynamic registration (dcr) or a first Client ID Metadata Document (cimd)',
    'kind',
    ['dcr', 'cimd'],
  );
  const cimd = fast<CimdFetchOutcome>(
    'latchkey_cimd_fetches_total',
    'Client ID Metadata Document resolutions that needed a fetch, by outcome',
    'outcome',
    ['fetched', 'stale_if_error', 'refused'],
  );
  const signIns = counter('latchkey_sign_ins_total', 'Sign-in attempts, by method and result', [
    'method',
    'result',
  ]);
  const sweeps = fast('latchkey_sweeper_runs_total', 'Sweeper runs, by result', 'result', ['ok', 'failed']);
  const swept = counter('latchkey_sweeper_rows_removed_total', 'Rows the sweeper removed, by kind', ['kind']);
  new Gauge({
    name: 'latchkey_db_pool_connections',
    help: 'PostgreSQL pool connections (total, idle, and requests waiting for one); absent for the embedded database',
    labelNames: ['state'],
    registers,
    collect() {
      const stats = db.poolStats?.();
      if (!stats) return;
      this.set({ state: 'total' }, stats.total);
      this.set({ state: 'idle' }, stats.idle);
      this.set({ state: 'waiting' }, stats.waiting);
    },
  });

  // Looked up once here, not per request.
  const active = introspections('active');
  const inactive = introspections('inactive');
  const hit = cache('hit');
  const miss = cache('miss');
  return {
    enabled: true,
    registry,
    routeRecorder: requests.routeRecorder,
    unmatched: requests.routeRecorder('unmatched'),
    tokensIssued: (grantType) => tokens(grantType).inc(),
    refresh: (outcome) => refreshes(outcome).inc(),
    replay: (kind) => replays(kind).inc(),
    revoked: (reason, target) => revocations.labels(reason, target).inc(),
    introspection: (isActive) => (isActive ? active : inactive).inc(),
    introspectionCache: (isHit) => (isHit ? hit : miss).inc(),
    registration: (kind) => registrations(kind).inc(),
    cimdFetch: (outcome) => cimd(outcome).inc(),
    signIn: (method, result) => signIns.labels(method, result).inc(),
    sweep(removed) {
      sweeps(removed ? 'ok' : 'failed').inc();
      for (const [kind, rows] of Object.entries(removed ?? {})) if (rows > 0) swept.labels(kind).inc(rows);
    },
  };
}
