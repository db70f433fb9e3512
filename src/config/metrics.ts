// The configuration rows of /metrics (README: Metrics). Off unless METRICS_TOKEN or METRICS_PORT is set: with a
// token only, /metrics is on the public listener behind that bearer token; with a port, /metrics is only on a
// listener of its own (on METRICS_HOST, else HOST), behind the token too when one is set.
import { ConfigError, type Env, int, str } from './read.ts';
import { earlier, type Row } from './table.ts';

export interface MetricsConfig {
  /** The bearer token /metrics requires (at least 32 characters); undefined: no token. */
  metricsToken: string | undefined;
  /** The port of the separate metrics listener; undefined: none. */
  metricsPort: number | undefined;
  /** The address of the separate metrics listener; undefined: HOST. */
  metricsHost: string | undefined;
}

function parseMetricsToken(env: Env): string | undefined {
  const token = str(env, 'METRICS_TOKEN');
  if (token !== undefined && token.length < 32) {
    throw new ConfigError('METRICS_TOKEN', 'must be at least 32 characters');
  }
  return token;
}

function parseMetricsPort(env: Env, port: number): number | undefined {
  if (str(env, 'METRICS_PORT') === undefined) return undefined;
  const metricsPort = int(env, 'METRICS_PORT', 0, 0, 65535);
  if (metricsPort !== 0 && metricsPort === port) {
    throw new ConfigError('METRICS_PORT', `must differ from PORT (${port})`);
  }
  return metricsPort;
}

/** Rows for the table in src/config.ts, after PORT (which METRICS_PORT must differ from). */
export const METRICS_ROWS: {
  [K in keyof MetricsConfig]: Row<MetricsConfig[K], MetricsConfig & { port: number }>;
} = {
  metricsToken: {
    section: 'Metrics',
    meaning:
      'serve Prometheus metrics at `/metrics` on the public listener, to requests bearing this token (at least 32 characters)',
    unset: 'no `/metrics` on the public listener',
    read: (env) => parseMetricsToken(env),
  },
  metricsPort: {
    meaning:
      'serve `/metrics` on a listener of its own at this port instead (then never on the public one; the token is required there too when set)',
    unset: 'no metrics listener',
    read: (env, c) => parseMetricsPort(env, earlier(c, 'port')),
  },
  metricsHost: {
    meaning: 'address of the metrics listener',
    unset: '`HOST`',
    read: (env) => str(env, 'METRICS_HOST'),
  },
};
