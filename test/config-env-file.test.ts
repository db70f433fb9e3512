// The `.env` reader of the process entry points (README "Configuration"): the forms it reads, the lines it refuses
// (naming the file and line), and real environment variables winning over the file.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EnvFileError, parseEnvFile, withEnvFile } from '../src/config/env-file.ts';

describe('parseEnvFile', () => {
  it('reads NAME=value lines, export, comments, blank lines and quotes', () => {
    const text = [
      '# a comment',
      '',
      'PORT=8080',
      'export HOST = 0.0.0.0  ',
      'LOG_LEVEL=debug # trailing comment',
      'DATA_DIR=./data#not-a-comment',
      `SCOPES='mcp  offline_access' # quoted`,
      'SCOPE_DESCRIPTIONS="{\\"mcp\\":\\"Use it\\"}"',
      'MULTI="a\\nb"',
      "SINGLE='a\\nb'",
      'EMPTY=',
      '\tINDENTED=yes\r',
    ].join('\n');
    assert.deepEqual(parseEnvFile(text, '.env'), {
      PORT: '8080',
      HOST: '0.0.0.0',
      LOG_LEVEL: 'debug',
      DATA_DIR: './data#not-a-comment',
      SCOPES: 'mcp  offline_access',
      SCOPE_DESCRIPTIONS: '{"mcp":"Use it"}',
      MULTI: 'a\nb',
      SINGLE: 'a\\nb',
      EMPTY: '',
      INDENTED: 'yes',
    });
  });

  const bad: [string, number, RegExp][] = [
    ['PORT=1\nISSUER https://auth.example.com', 2, /expected NAME=value/],
    ['\n\n1PORT=3000', 3, /expected NAME=value/],
    ['PORT-X=3000', 1, /expected NAME=value/],
    ['ISSUER="https://auth.example.com', 1, /no closing "/],
    ["ISSUER='https://auth.example.com' extra", 1, /unexpected text after the closing '/],
  ];
  for (const [text, line, problem] of bad) {
    it(`refuses ${JSON.stringify(text)}, naming the file and line ${line}`, () => {
      assert.throws(
        () => parseEnvFile(text, '/srv/latchkey/.env'),
        (err: unknown) =>
          err instanceof EnvFileError &&
          err.file === '/srv/latchkey/.env' &&
          err.line === line &&
          err.message.startsWith(`/srv/latchkey/.env line ${line}: `) &&
          problem.test(err.message),
      );
    });
  }
});

describe('withEnvFile', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'latchkey-envfile-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('returns the environment itself when the directory has no .env', () => {
    const env = { PORT: '1' };
    assert.equal(withEnvFile(env, dir), env);
  });

  it('adds the file under the environment: a variable set in the environment, even empty, wins', async () => {
    await writeFile(join(dir, '.env'), 'PORT=8080\nISSUER=https://file.example\nLOG_LEVEL=debug\n');
    const env = { PORT: '9090', ISSUER: '', OTHER: 'x' };
    assert.deepEqual(withEnvFile(env, dir), {
      PORT: '9090',
      ISSUER: '',
      LOG_LEVEL: 'debug',
      OTHER: 'x',
    });
    assert.deepEqual(env, { PORT: '9090', ISSUER: '', OTHER: 'x' }, 'the given environment is left alone');
  });

  it('names the file it refuses by its full path', async () => {
    await writeFile(join(dir, '.env'), '# ok\nnot a line\n');
    assert.throws(() => withEnvFile({}, dir), {
      name: 'EnvFileError',
      message: `${join(dir, '.env')} line 2: expected NAME=value (a name of letters, digits and _)`,
    });
  });
});
