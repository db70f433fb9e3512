// LOG_FORMAT=pretty: each pino line becomes one plain line (time, level, message, fields), still censored, with an
// error's stack indented under it; a line that is not JSON passes through.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { formatPrettyLine, prettyDestination } from '../src/log-pretty.ts';
import { loggerOptions } from '../src/logger.ts';

function prettyLogger(): { logger: pino.Logger; out: string[] } {
  const out: string[] = [];
  const sink = { write: (s: string) => out.push(s) } as unknown as NodeJS.WritableStream;
  return { logger: pino(loggerOptions('info'), prettyDestination(sink)), out };
}

describe('pretty log lines', () => {
  it('prints time, level, message and the fields, one line each, with no JSON around them', () => {
    const { logger, out } = prettyLogger();
    logger.info({ issuer: 'http://localhost:3000', database: 'pglite' }, 'latchkey is ready');
    logger.warn({ route: { method: 'GET', path: '/x y' }, n: 3 }, 'odd');
    assert.match(
      out[0]!,
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}latchkey is ready {2}issuer=http:\/\/localhost:3000 database=pglite\n$/,
    );
    assert.match(out[1]!, /^\S+ WARN {2}odd {2}route\.method=GET route\.path="\/x y" n=3\n$/);
  });

  it('keeps the censoring of the JSON logs: a secret never reaches the pretty line', () => {
    const { logger, out } = prettyLogger();
    logger.info(
      { client_secret: 'very-secret-value', nested: { refreshToken: 'rt-secret' } },
      'with secrets',
    );
    assert.ok(
      !out.join('').includes('very-secret-value') && !out.join('').includes('rt-secret'),
      out.join(''),
    );
    assert.match(out[0]!, /client_secret=\[redacted\] nested\.refreshToken=\[redacted\]/);
  });

  it("puts an error's stack under its line, indented", () => {
    const { logger, out } = prettyLogger();
    logger.error({ err: new Error('it broke') }, 'failed');
    const [line, ...stack] = out[0]!.trimEnd().split('\n');
    assert.match(line!, /ERROR failed {2}.*err\.message="it broke"/);
    assert.ok(stack.length > 0 && stack.every((l) => l.startsWith('    ')), out[0]);
  });

  it('passes a line that is not JSON through as it is', () => {
    assert.equal(formatPrettyLine('not json'), 'not json\n');
  });
});
