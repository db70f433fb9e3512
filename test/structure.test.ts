// The shape the code keeps (issue 8): small files, one way to make OAuth errors, protocol decisions out of the
// store, and /token as a short pipeline over the grant registry. Each check names the file that breaks it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { it } from 'node:test';

const root = join(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (path === join('src', 'generated')) return [];
    if (statSync(join(root, path)).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

const read = (path: string) => readFileSync(join(root, path), 'utf8');
const lines = (path: string) => read(path).split('\n').length - 1;

const ERROR_CODES = [...read('src/oauth/errors.ts').matchAll(/^ {2}\| '([a-z_]+)'$/gm)].map((m) => m[1]!);

it('keeps every file in src/ at 300 lines or fewer', () => {
  const long = sources('src')
    .filter((f) => lines(f) > 300)
    .map((f) => `${f} (${lines(f)})`);
  assert.deepEqual(long, []);
});

it('keeps routes/token.ts a short pipeline (read → authenticate → find grant → allowed → handle → answer)', () => {
  assert.ok(
    lines('src/routes/token.ts') <= 60,
    `src/routes/token.ts has ${lines('src/routes/token.ts')} lines`,
  );
  assert.match(read('src/routes/token.ts'), /createGrantRegistry/);
});

it('makes OAuth errors only through the factories in oauth/errors.ts', () => {
  assert.ok(ERROR_CODES.length > 10, 'the error union was not found');
  const offenders = sources('src').filter(
    (f) =>
      f !== join('src', 'oauth', 'errors.ts') &&
      // The resource-server kit is a separate package with RFC 6750 challenges of its own.
      !f.startsWith(join('src', 'resource-server')) &&
      /new OAuthError\(|error_description:/.test(read(f)),
  );
  assert.deepEqual(offenders, []);
});

it('keeps OAuth error codes out of store/: the store reports facts, the grant handlers decide', () => {
  const offenders = sources('src/store').flatMap((f) => {
    const text = read(f);
    const codes = ERROR_CODES.filter((c) => text.includes(`'${c}'`));
    return /oauth\/errors/.test(text) || codes.length ? [`${relative(root, f)}: ${codes.join(' ')}`] : [];
  });
  assert.deepEqual(offenders, []);
});

it('keeps Prisma out of the CLI: commands go through the stores', () => {
  // run.ts opens the database and builds the stores the commands receive.
  const offenders = sources('src/cli').filter(
    (f) => f !== join('src', 'cli', 'run.ts') && /\.prisma\b|generated\/prisma/.test(read(f)),
  );
  assert.deepEqual(offenders, []);
});

it('cites RFCs and README sections in comments, never documents outside the repository', () => {
  const outside = /\b(DESIGN|INTEROP|STYLE)(\.md)?\b[:)]|\.\.\/shared\//;
  const offenders = [...sources('src'), ...sources('test')].filter(
    (f) => f !== join('test', 'structure.test.ts') && outside.test(read(f)),
  );
  assert.deepEqual(offenders, []);
});
