// The variables that place the metrics listener, for messages about it (src/main.ts loads this before anything heavy).
export const METRICS_NAMES = { host: 'METRICS_HOST', port: 'METRICS_PORT' };
