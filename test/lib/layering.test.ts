// Layering (issue 8, "lib/ depends on nothing above it"): src/lib/ holds helpers every layer may use, so it imports
// only node: modules, npm packages and its own files. And the store reports facts, never OAuth errors: src/store/
// must not import src/oauth/errors.ts.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const src = resolve(import.meta.dirname, '../../src');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every relative module a file imports or re-exports (static or dynamic), resolved to a path under src/. */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [
    ...text.matchAll(/\b(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]/g),
    ...text.matchAll(/\bimport\s*\(?\s*['"]([^'"]+)['"]/g),
  ].map((m) => m[1]!);
  return specifiers.filter((s) => s.startsWith('.')).map((s) => relative(src, resolve(dirname(file), s)));
}

function violations(dir: string, allowed: (target: string) => boolean): string[] {
  return tsFiles(join(src, dir)).flatMap((file) =>
    relativeImports(file)
      .filter((target) => !allowed(target))
      .map((target) => `${relative(src, file)} imports ${target}`),
  );
}

describe('layering', () => {
  it('src/lib imports nothing from outside src/lib', () => {
    assert.deepEqual(
      violations('lib', (target) => target.startsWith('lib/')),
      [],
    );
  });

  it('the check sees a violation when there is one', () => {
    // Guards the scanner itself: the resource-server kit does import from outside its folder.
    assert.notDeepEqual(
      violations('resource-server', (target) => target.startsWith('resource-server/')),
      [],
    );
  });

  it('src/store never imports src/oauth/errors.ts (the store reports facts, not OAuth errors)', () => {
    assert.deepEqual(
      violations('store', (target) => target !== 'oauth/errors.ts'),
      [],
    );
  });
});
