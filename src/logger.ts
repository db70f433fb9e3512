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
];

export const REDACT_PATHS = [
  ...SECRET_KEYS.flatMap((k) => [`req.headers["${k}"]`, `res.headers["${k}"]`, `headers["${k}"]`]),
  ...SECRET_KEYS.flatMap((k) => [
    `${k}`,
    `*.${k}`,
    `body.${k}`,
    `req.body.${k}`,
    `query.${k}`,
    `req.query.${k}`,
  ]),
];

export function loggerOptions(level: LogLevel): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
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
