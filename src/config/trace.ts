// The configuration row of client traces (README: Client traces), read after the metrics rows.
import { int } from './read.ts';
import type { Row } from './table.ts';

export interface TraceConfig {
  /** Protocol steps kept per client_id for `latchkey trace`; 0: none recorded. */
  traceSteps: number;
}

export const TRACE_ROWS: { [K in keyof TraceConfig]: Row<TraceConfig[K], TraceConfig> } = {
  traceSteps: {
    section: 'Client traces',
    meaning:
      'protocol steps kept per client for `latchkey trace` (authorize, sign-in, consent, code, token, refresh, introspection failures); `0` records none',
    read: (env) => int(env, 'TRACE_STEPS', 50, 0, 1000),
  },
};
