// The rows of the configuration table (src/config.ts) that bound slow clients: connection, header, request-body
// and keep-alive limits (README: Security notes), read right after TRUST_PROXY.
import type { Config } from '../config.ts';
import { ConfigError, int } from './read.ts';
import { earlier, type Rows } from './table.ts';

type SlowClientFields =
  | 'headersTimeout'
  | 'requestTimeout'
  | 'connectionTimeout'
  | 'keepAliveTimeout'
  | 'bodyLimit';

export const SLOW_CLIENT_ROWS: Pick<Rows<Config>, SlowClientFields> = {
  headersTimeout: {
    meaning:
      'seconds a client has to send the request line and headers, else 408 and the connection is closed',
    read: (env) => int(env, 'HEADERS_TIMEOUT', 10, 1, 600),
  },
  requestTimeout: {
    meaning:
      'seconds a client has to send a whole request (headers and body), else 408; not less than `HEADERS_TIMEOUT`',
    read: (env, c) => {
      const requestTimeout = int(env, 'REQUEST_TIMEOUT', 30, 1, 3600);
      if (requestTimeout < earlier(c, 'headersTimeout')) {
        throw new ConfigError('REQUEST_TIMEOUT', 'must not be less than HEADERS_TIMEOUT');
      }
      return requestTimeout;
    },
  },
  connectionTimeout: {
    meaning:
      'seconds a connection may stay silent (no bytes either way) before it is closed; `0` for no limit',
    read: (env) => int(env, 'CONNECTION_TIMEOUT', 60, 0, 3600),
  },
  keepAliveTimeout: {
    meaning: 'seconds an idle kept-alive connection stays open between requests',
    read: (env) => int(env, 'KEEP_ALIVE_TIMEOUT', 5, 1, 600),
  },
  bodyLimit: {
    meaning: 'largest request body accepted, in bytes (larger: 413)',
    read: (env) => int(env, 'BODY_LIMIT', 64 * 1024, 1024, 10 * 1024 * 1024),
  },
};
