// A pino logger with Latchkey's own options (levels, redaction) that keeps every line in memory, for tests that
// assert what was logged — and what never was.
import { Writable } from 'node:stream';
import pino from 'pino';
import { loggerOptions } from '../../src/logger.ts';

export interface CapturedLogs {
  logger: pino.Logger;
  /** Every line, parsed. */
  readonly lines: Record<string, unknown>[];
  /** Every line as written (for "this string never appears" checks). */
  readonly raw: string[];
  /** Lines at `level` or above (pino numbers: 40 warn, 50 error). */
  atLeast(level: number): Record<string, unknown>[];
}

export function captureLogs(level: 'info' | 'debug' | 'warn' = 'info'): CapturedLogs {
  const raw: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  const logger = pino(loggerOptions(level), stream);
  return {
    logger,
    lines,
    raw,
    atLeast: (n) => lines.filter((l) => typeof l.level === 'number' && l.level >= n),
  };
}
