// Process entry: config (the environment, over ./.env when present) → the listen address checked → the first line →
// src/server.ts (database → migrations → listen). Only the configuration and src/startup.ts load before the first
// line, so it appears at once; the database drivers and the app load after it.
import { EnvFileError, withEnvFile } from './config/env-file.ts';
import { ConfigError, loadConfig } from './config.ts';
import { METRICS_NAMES } from './metrics/names.ts';
import { checkListenAddress, packageVersion, StopSignals, startLine } from './startup.ts';
import { resolveUpstreamKeys } from './upstream/config.ts';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(withEnvFile(process.env));
    // Upstream token keys: UPSTREAM_TOKEN_KEYS, or the embedded database's key file (generated on first start).
    const keys = resolveUpstreamKeys(config);
    if (keys.length > 0) config = { ...config, upstreamTokenKeys: keys };
  } catch (err) {
    if (err instanceof ConfigError || err instanceof EnvFileError) {
      process.stderr.write(`latchkey: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // A busy port (or a HOST that is not here) is found in milliseconds, before seconds of database work, and said
  // in one line.
  const { metricsPort, metricsHost = config.host } = config;
  const problem =
    (await checkListenAddress(config.host, config.port)) ??
    (metricsPort ? await checkListenAddress(metricsHost, metricsPort, METRICS_NAMES) : undefined);
  if (problem) {
    process.stderr.write(`latchkey: ${problem}\n`);
    process.exit(1);
  }
  const signals = new StopSignals();
  // Plain words on stderr, whatever LOG_FORMAT says: stdout stays one log format for collectors.
  if (config.logLevel !== 'silent') process.stderr.write(`${startLine(config, packageVersion())}\n`);

  const { startServer } = await import('./server.ts');
  await startServer(config, signals);
}

main().catch((err) => {
  process.stderr.write(`latchkey: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
