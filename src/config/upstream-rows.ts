// The rows of the configuration table (src/config.ts) for sign-in through upstream providers (federation): read in
// this order, after the rows above them (RESOURCE_SERVERS' provider ids are checked once both are known).
import type { Config } from '../config.ts';
import { parseUpstreamProviders, parseUpstreamTokenKeys } from '../upstream/config.ts';
import { bool, ConfigError, int, str } from './read.ts';
import { earlier, type Rows } from './table.ts';

type UpstreamFields =
  | 'upstreamAllowInsecureLoopback'
  | 'upstreamHttpTimeout'
  | 'upstreamProvidersFile'
  | 'upstreamProviders'
  | 'upstreamTokenKeys'
  | 'passwordSignIn';

export const UPSTREAM_ROWS: Pick<Rows<Config>, UpstreamFields> = {
  upstreamAllowInsecureLoopback: {
    section: 'Upstream sign-in',
    meaning:
      'allow `http://` upstream provider URLs on loopback hosts (tests and development only; warns at start)',
    read: (env) => bool(env, 'UPSTREAM_ALLOW_INSECURE_LOOPBACK', false),
  },
  upstreamHttpTimeout: {
    meaning: 'seconds allowed for each HTTP call to an upstream provider',
    read: (env) => int(env, 'UPSTREAM_HTTP_TIMEOUT', 10, 1, 60),
  },
  upstreamProvidersFile: {
    meaning:
      'path of a file holding the `UPSTREAM_PROVIDERS` JSON (keeps client secrets out of the environment)',
    unset: 'unset',
    read: (env) => str(env, 'UPSTREAM_PROVIDERS_FILE'),
  },
  upstreamProviders: {
    meaning:
      'JSON array of upstream identity providers (`oidc`, `oauth2`, `plane`, `github`, `google`) people may sign in with; see "Sign in through an upstream provider"',
    unset: 'no upstream sign-in',
    read: (env, c) =>
      parseUpstreamProviders(
        str(env, 'UPSTREAM_PROVIDERS'),
        c.upstreamProvidersFile,
        earlier(c, 'upstreamAllowInsecureLoopback'),
      ),
  },
  upstreamTokenKeys: {
    meaning:
      'comma-separated `kid:key` (key: base64url of 32 bytes) encrypting upstream tokens; the first encrypts, all decrypt',
    unset: 'with the embedded database, a key file generated in `DATA_DIR`; required with `DATABASE_URL`',
    read: (env, c) => {
      const keys = parseUpstreamTokenKeys(str(env, 'UPSTREAM_TOKEN_KEYS'));
      if (!keys && earlier(c, 'upstreamProviders').length > 0 && c.databaseUrl !== undefined) {
        throw new ConfigError(
          'UPSTREAM_TOKEN_KEYS',
          'required when UPSTREAM_PROVIDERS is set and DATABASE_URL is used',
        );
      }
      return keys;
    },
  },
  passwordSignIn: {
    meaning: 'show and accept the email and password form (true/false)',
    read: (env, c) => {
      const on = bool(env, 'PASSWORD_SIGN_IN', true);
      if (!on && earlier(c, 'upstreamProviders').length === 0) {
        throw new ConfigError(
          'PASSWORD_SIGN_IN',
          'false needs UPSTREAM_PROVIDERS: otherwise nobody could sign in',
        );
      }
      return on;
    },
  },
};
