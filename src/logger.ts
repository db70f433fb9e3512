// pino options shared by the server and the CLI. The redaction list is the last line of defence:
// nothing secret is logged on purpose, and these paths keep it out even by accident.
import type { LoggerOptions } from 'pino';
import type { LogLevel } from './config.ts';

const SECRET_KEYS = [
  'authorization',
  'cookie',
  'set-cookie',
  'password',
  'client_secret',
  'clientSecret',
  'code',
  'code_verifier',
  'codeVerifier',
  'access_token',
  'accessToken',
  'refresh_token',
  'refreshToken',
  'token',
  'id_token',
  'registration_access_token',
  'csrf',
  'csrf_token',
  'secret',
  // Upstream sign-in: the state binds a flow to a browser, the nonce binds the ID token to it.
  'state',
  'nonce',
];

// Fixed paths for the shapes Fastify itself logs; censorSecrets (below) walks everything else. Kept short: pino
// applies them to every child logger, and Fastify makes one per request.
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
];

const CENSOR = '[redacted]';
const SECRET_KEY_NAMES = new Set(SECRET_KEYS.map(normalizeKey));

function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Whether a property name looks like it holds a secret, whatever its case or separators. */
export function isSecretKey(key: string): boolean {
  const k = normalizeKey(key);
  return (
    SECRET_KEY_NAMES.has(k) ||
    k.endsWith('token') ||
    k.endsWith('secret') ||
    k.endsWith('password') ||
    k.endsWith('verifier') ||
    k.startsWith('session') ||
    k === 'cookies'
  );
}

/**
 * A copy of `value` with every secret-looking property censored, at any depth (the fixed redact paths only reach
 * known shapes). Errors keep their message and stack; cycles and very deep objects are cut off.
 */
export function censorSecrets(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8 || seen.has(value)) return '[…]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => censorSecrets(v, depth + 1, seen));
  // What serializes itself (Date, URL, Buffer…) is censored in the form it would be logged in.
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function' && !(value instanceof Error)) {
    return censorSecrets(toJSON.call(value), depth + 1, seen);
  }
  const out: Record<string, unknown> = {};
  if (value instanceof Error) {
    out.type = value.name;
    out.message = value.message;
    if (value.stack) out.stack = value.stack;
  }
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSecretKey(k) ? CENSOR : censorSecrets(v, depth + 1, seen);
  }
  return out;
}

export function loggerOptions(level: LogLevel): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    formatters: {
      // `req` and `res` are left to their serializers below, which keep only harmless fields.
      log: (object) => {
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(object)) {
          out[k] = k === 'req' || k === 'res' ? v : isSecretKey(k) ? CENSOR : censorSecrets(v);
        }
        return out;
      },
    },
    // Never log full URLs with query strings: /authorize and callbacks carry codes and state.
    serializers: {
      req(req: { method?: string; url?: string; id?: string; ip?: string }) {
        return { id: req.id, method: req.method, path: (req.url ?? '').split('?')[0], remoteAddress: req.ip };
      },
      res(res: { statusCode?: number }) {
        return { statusCode: res.statusCode };
      },
    },
  };
}

/**
 * The level for routes that are called all the time (health checks, assets, metrics, /introspect): routine requests
 * are not logged one by one, so the level is at least `warn`; a quieter configured level (error, fatal, silent) is
 * kept, so LOG_LEVEL=silent means no line at all. With `verbose`, debug and trace show those requests too.
 */
export function quietLevel(configured: LogLevel, verbose = false): LogLevel {
  if (configured === 'error' || configured === 'fatal' || configured === 'silent') return configured;
  if (verbose && (configured === 'debug' || configured === 'trace')) return configured;
  return 'warn';
}
