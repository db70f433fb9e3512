// Federated sign-in, assembled at start: one provider object per UPSTREAM_PROVIDERS entry, the cipher for upstream
// secrets (UPSTREAM_TOKEN_KEYS or the DATA_DIR key file), and the one fetch every upstream call uses.
import type { Config } from '../config.ts';
import type { Clock } from '../lib/clock.ts';
import { redirectUri, resolveUpstreamKeys } from './config.ts';
import { type UpstreamCipher, upstreamCipher } from './crypto.ts';
import { limitedFetch, type UpstreamFetch } from './http.ts';
import { createProvider, type UpstreamProvider } from './providers/index.ts';

export interface Upstream {
  /** Configured providers, in configuration order. */
  readonly providers: readonly UpstreamProvider[];
  provider(id: string): UpstreamProvider | undefined;
  readonly cipher: UpstreamCipher;
  /** `${ISSUER}/login/upstream/<id>/callback`. */
  redirectUri(id: string): string;
}

export interface UpstreamDeps {
  config: Config;
  clock: Clock;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Replaces the global fetch for every upstream call (tests); limits still apply on top. */
  fetch?: UpstreamFetch;
}

export function createUpstream(deps: UpstreamDeps): Upstream {
  const { config, clock, log } = deps;
  const fetch = limitedFetch(
    deps.fetch ?? ((url, init) => globalThis.fetch(url, init)),
    config.upstreamHttpTimeout,
  );
  const providerDeps = { fetch, clock, allowInsecureLoopback: config.upstreamAllowInsecureLoopback, log };
  const providers = config.upstreamProviders.map((p) => createProvider(p, providerDeps));
  const byId = new Map(providers.map((p) => [p.config.id, p]));
  const cipher = upstreamCipher(resolveUpstreamKeys(config));
  return {
    providers,
    provider: (id) => byId.get(id),
    cipher,
    redirectUri: (id) => redirectUri(config.issuer, id),
  };
}

/** The start-up lines: one per provider with its exact redirect URI, and the loopback warning. */
export function logUpstreamProviders(upstream: Upstream, config: Config, log: UpstreamDeps['log']): void {
  for (const p of upstream.providers) {
    log.info(
      { provider: p.config.id, type: p.config.type, redirect_uri: upstream.redirectUri(p.config.id) },
      'upstream provider configured',
    );
  }
  if (config.upstreamAllowInsecureLoopback) {
    log.warn(
      {},
      'UPSTREAM_ALLOW_INSECURE_LOOPBACK is on: upstream providers on loopback may use plain http (development only)',
    );
  }
}
