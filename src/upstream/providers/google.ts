// The Google preset: OpenID Connect at https://accounts.google.com with offline access (a refresh token is only
// returned with access_type=offline, and reliably only with prompt=consent), `hd` sent when hosted_domain is set and
// checked on the ID token by the allow-list (src/upstream/accounts.ts).
import type { OidcProvider } from '../config.ts';
import { oidcProvider } from './oidc.ts';
import type { ProviderDeps, UpstreamProvider } from './types.ts';

export function googleProvider(config: OidcProvider, deps: ProviderDeps): UpstreamProvider {
  return oidcProvider(config, deps);
}
