// Issue 8, acceptance 3: the configuration table in src/config.ts is the one declaration of every variable; the
// README's configuration table and .env.example are held to it here, and each problem names the variable.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  COMPOSE_VARIABLES,
  envExample,
  README_END,
  README_START,
  withReadmeTable,
} from '../scripts/config-docs.ts';
import { configTable } from '../src/config/table.ts';
import { CONFIG_VARIABLES, loadConfig, type Variable } from '../src/config.ts';
import { PACKAGE_ROOT } from '../src/paths.ts';
import { parseEnvFile } from './process/operator-files.ts';

const read = (name: string) => readFileSync(join(PACKAGE_ROOT, name), 'utf8');
const REGENERATE = 'run `node --import tsx scripts/config-docs.ts`';

/** What the README's configuration table says of each variable. */
function readmeRows(readme: string): Map<string, { meaning: string; shownDefault: string }> {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  assert.ok(start !== -1 && end > start, 'README.md has the configuration table markers');
  const rows = new Map<string, { meaning: string; shownDefault: string }>();
  for (const line of readme.slice(start + README_START.length, end).split('\n')) {
    const m = /^\| `([A-Z][A-Z0-9_]*)` \| (.*) \| (.*) \|$/.exec(line.trim());
    if (m) rows.set(m[1]!, { meaning: m[2]!, shownDefault: m[3]! });
  }
  return rows;
}

/** Every disagreement between the README and .env.example and the table, each naming its variable. */
function problems(variables: readonly Variable[], readme: string, envFile: string): string[] {
  const out: string[] = [];
  const rows = readmeRows(readme);
  const entries = new Map<string, { value: string; comment: string[] }>();
  for (const e of parseEnvFile(envFile)) {
    if (entries.has(e.name)) out.push(`.env.example lists ${e.name} twice`);
    entries.set(e.name, e);
  }
  for (const v of variables) {
    const row = rows.get(v.name);
    if (!row) out.push(`README.md's configuration table lacks ${v.name}`);
    else {
      if (row.shownDefault !== v.shownDefault)
        out.push(
          `README.md gives ${v.name} the default ${row.shownDefault}; src/config.ts: ${v.shownDefault}`,
        );
      if (row.meaning !== v.meaning) out.push(`README.md explains ${v.name} differently from src/config.ts`);
    }
    const entry = entries.get(v.name);
    if (!entry) out.push(`.env.example lacks ${v.name}`);
    else {
      if (entry.value !== v.envDefault)
        out.push(`.env.example sets ${v.name}=${entry.value}; its default in src/config.ts: ${v.envDefault}`);
      if (entry.comment.length === 0) out.push(`.env.example does not explain ${v.name}`);
    }
  }
  const declared = new Set(variables.map((v) => v.name));
  for (const name of rows.keys())
    if (!declared.has(name)) out.push(`README.md lists ${name}, which src/config.ts does not read`);
  // docker compose's own variables (scripts/config-docs.ts) have their own section; container.test.ts checks them.
  const compose = new Set(COMPOSE_VARIABLES.map((v) => v.name));
  for (const name of entries.keys())
    if (!declared.has(name) && !compose.has(name))
      out.push(`.env.example lists ${name}, which src/config.ts does not read`);
  return out;
}

describe('the configuration table', () => {
  const readme = read('README.md');
  const envFile = read('.env.example');

  it('is what the README configuration table and .env.example say, variable by variable', () => {
    assert.deepEqual(problems(CONFIG_VARIABLES, readme, envFile), [], REGENERATE);
  });

  it('is exactly what scripts/config-docs.ts writes (order, sections and wording too)', () => {
    assert.equal(readme, withReadmeTable(readme), REGENERATE);
    assert.equal(envFile, envExample(), REGENERATE);
  });

  it('names a variable declared in src/config.ts but missing from both files, and one only they list', () => {
    const added: Variable = {
      name: 'NEW_SETTING',
      field: 'newSetting',
      meaning: 'a setting added to the parser only',
      section: undefined,
      envDefault: '7',
      shownDefault: '`7`',
    };
    assert.deepEqual(problems([...CONFIG_VARIABLES, added], readme, envFile), [
      "README.md's configuration table lacks NEW_SETTING",
      '.env.example lacks NEW_SETTING',
    ]);
    const [port, ...rest] = CONFIG_VARIABLES;
    assert.deepEqual(
      problems([{ ...port!, shownDefault: '`8080`', envDefault: '8080' }, ...rest], readme, envFile),
      [
        'README.md gives PORT the default `3000`; src/config.ts: `8080`',
        '.env.example sets PORT=3000; its default in src/config.ts: 8080',
      ],
    );
    assert.deepEqual(problems(rest, readme, envFile), [
      'README.md lists PORT, which src/config.ts does not read',
      '.env.example lists PORT, which src/config.ts does not read',
    ]);
  });

  it("documents each variable's default as the value that gives the default configuration", () => {
    const defaults = loadConfig({});
    for (const v of CONFIG_VARIABLES) {
      assert.deepEqual(loadConfig({ [v.name]: v.envDefault }), defaults, `${v.name}=${v.envDefault}`);
    }
  });

  it('declares each variable once, one per Config field', () => {
    const names = CONFIG_VARIABLES.map((v) => v.name);
    assert.equal(new Set(names).size, names.length);
    assert.deepEqual(CONFIG_VARIABLES.map((v) => v.field).sort(), Object.keys(loadConfig({})).sort());
  });
});

describe('configTable', () => {
  it('refuses a row that reads no variable or more than one', () => {
    assert.throws(
      () => configTable<{ a: string }>({ a: { meaning: 'm', read: () => 'x' } }),
      /row a must read one variable, read none/,
    );
    assert.throws(
      () => configTable<{ a: string }>({ a: { meaning: 'm', read: (env) => `${env.A}${env.B}` } }),
      /row a must read one variable, read A, B/,
    );
  });

  it('refuses two rows that read the same variable', () => {
    assert.throws(
      () =>
        configTable<{ a: string; b: string }>({
          a: { meaning: 'm', read: (env) => env.A ?? 'x' },
          b: { meaning: 'm', read: (env) => env.A ?? 'y' },
        }),
      /variable A is read by two rows/,
    );
  });

  it('shows a row nothing of the environment but its own variable', () => {
    const table = configTable<{ a: string }>({
      // Reads B only once A is set: the declaration run cannot see it, and at load B is not there to read.
      a: { meaning: 'm', read: (env) => (env.A ? `${env.A}+${env.B ?? 'no B'}` : 'unset') },
    });
    assert.deepEqual(
      table.variables.map((v) => v.name),
      ['A'],
    );
    assert.deepEqual(table.load({ A: 'a', B: 'b' }), { a: 'a+no B' });
  });

  it('needs an "unset" text for a default that is not a plain value', () => {
    assert.throws(
      () => configTable<{ a: object }>({ a: { meaning: 'm', read: (env) => ({ v: env.A }) } }),
      /row a: its default is not a plain value/,
    );
  });
});
