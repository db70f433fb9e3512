// The log censor: secrets are removed at any depth and in any spelling of their key, and nothing else is.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import pino from 'pino';
import { censorSecrets, isSecretKey, loggerOptions } from '../src/logger.ts';

describe('log censoring', () => {
  it('recognises secret keys whatever their case and separators', () => {
    for (const k of [
      'Authorization',
      'password',
      'client_secret',
      'clientSecret',
      'refresh-token',
      'sessionToken',
      'csrfToken',
      'session_id',
      'code_verifier',
      'Cookie',
      'REGISTRATION_ACCESS_TOKEN',
    ]) {
      assert.ok(isSecretKey(k), k);
    }
    for (const k of ['email', 'client_id', 'path', 'statusCode', 'scope', 'grantId'])
      assert.equal(isSecretKey(k), false, k);
  });

  it('censors secrets nested deep in objects and arrays, and keeps the rest', () => {
    const out = censorSecrets({
      request: {
        body: { password: 'p4ss', email: 'a@example.com' },
        headers: { Authorization: 'Bearer abc' },
      },
      list: [{ refresh_token: 'rt' }, { scope: 'mcp' }],
    }) as Record<string, never>;
    const text = JSON.stringify(out);
    for (const secret of ['p4ss', 'Bearer abc', '"rt"']) assert.equal(text.includes(secret), false, secret);
    assert.ok(text.includes('a@example.com'));
    assert.ok(text.includes('mcp'));
  });

  it('survives cycles and keeps error messages', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a.self = a;
    const err = Object.assign(new Error('boom'), { token: 'tok' });
    const text = JSON.stringify(censorSecrets({ a, err }));
    assert.ok(text.includes('boom'));
    assert.equal(text.includes('tok"'), false);
  });

  it('applies to every line a pino logger with Latchkey options writes', () => {
    let written = '';
    const sink = new Writable({
      write(chunk, _enc, done) {
        written += chunk.toString();
        done();
      },
    });
    const log = pino(loggerOptions('info'), sink);
    log.info({ deep: { deeper: { clientSecret: 's3cr3t-value' } }, user: 'ada@example.com' }, 'hello');
    assert.ok(written.includes('ada@example.com'));
    assert.equal(written.includes('s3cr3t-value'), false);
  });
});
