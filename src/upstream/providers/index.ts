// One provider object per configured entry, built at start (no network until first use).
import type { ProviderConfig } from '../config.ts';
import { githubProvider } from './github.ts';
import { googleProvider } from './google.ts';
import { oauth2Provider } from './oauth2.ts';
import { oidcProvider } from './oidc.ts';
import { planeProvider } from './plane.ts';
import type { ProviderDeps, UpstreamProvider } from './types.ts';

export type * from './types.ts';

export function createProvider(config: ProviderConfig, deps: ProviderDeps): UpstreamProvider {
  switch (config.type) {
    case 'oidc':
      return oidcProvider(config, deps);
    case 'google':
      return googleProvider(config, deps);
    case 'oauth2':
      return oauth2Provider(config, deps);
    case 'plane':
      return planeProvider(config, deps);
    case 'github':
      return githubProvider(config, deps);
  }
}
