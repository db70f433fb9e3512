// Issue 2: an invalid configuration value stops the start with a message naming the variable and what is wrong;
// nothing listens and nothing is written. The `latchkey` command refuses the same values the same way.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, isListening } from '../helpers/net.ts';
import { runCli, spawnServer, tempDir } from '../helpers/server-process.ts';

const CASES: { env: Record<string, string>; variable: string; problem: RegExp }[] = [
  { env: { PORT: 'abc' }, variable: 'PORT', problem: /whole number/ },
  { env: { ISSUER: 'nope' }, variable: 'ISSUER', problem: /absolute URL/ },
  { env: { DATABASE_URL: 'mysql://x' }, variable: 'DATABASE_URL', problem: /postgres:\/\// },
  { env: { LOG_LEVEL: 'loud' }, variable: 'LOG_LEVEL', problem: /must be one of/ },
];

describe('invalid configuration', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    dir = await tempDir('latchkey-config-');
  });
  after(() => dir.remove());

  for (const { env, variable, problem } of CASES) {
    const shown = Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');

    it(`stops the server at start on ${shown}, naming ${variable}, listening on nothing and writing nothing`, async () => {
      const port = await freePort();
      const dataDir = join(dir.path, `server-${variable}`);
      const server = spawnServer({ env: { PORT: String(port), DATA_DIR: dataDir, ...env } });
      const exit = await server.exited;
      assert.equal(exit.signal, null, 'it ended by itself');
      assert.equal(exit.code, 2);
      assert.match(server.stderr(), new RegExp(`\\b${variable}\\b`));
      assert.match(server.stderr(), problem);
      assert.ok(!/Server listening/.test(server.stdout()), 'it never listened');
      if (variable !== 'PORT') assert.equal(await isListening(port), false);
      assert.ok(!existsSync(dataDir), 'no data directory was created');
    });

    it(`makes the latchkey command refuse ${shown} the same way, exit 2`, async () => {
      const dataDir = join(dir.path, `cli-${variable}`);
      const r = await runCli(['user', 'list'], { env: { DATA_DIR: dataDir, ...env } });
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`invalid configuration: ${variable}: `));
      assert.match(r.stderr, problem);
      assert.equal(r.stdout, '');
      assert.ok(!existsSync(dataDir), 'no data directory was created');
    });
  }
});
