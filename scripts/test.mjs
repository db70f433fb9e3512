// Runs every test/**/*.test.ts with Node's own test runner (through tsx), one file per process.
// Arguments narrow the run: `npm test -- test/db` or `npm test -- test/config.test.ts`.
// LATCHKEY_TEST_DB=pglite|postgres|pglite,postgres chooses the databases storage tests run against (default both).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');

function collect(path, out) {
  const st = statSync(path);
  if (st.isDirectory()) {
    for (const name of readdirSync(path).sort()) collect(join(path, name), out);
  } else if (path.endsWith('.test.ts')) {
    out.push(relative(root, path));
  }
  return out;
}

// Tests start the built server exactly as `npm start` and the container do, so build first.
if (process.env.LATCHKEY_SKIP_BUILD !== '1') {
  const b = spawnSync(process.execPath, [join(root, 'scripts/prepare.mjs')], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}

const targets = process.argv.slice(2);
const files = (targets.length ? targets : ['test']).flatMap((t) => collect(join(root, t), []));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const args = [
  '--import',
  'tsx',
  '--test',
  `--test-concurrency=${concurrency}`,
  '--test-timeout=240000',
  ...files,
];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: process.env });
process.exit(r.status ?? 1);
