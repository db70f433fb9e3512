// The `.env` file the process entry points (src/main.ts, src/cli.ts) read from the working directory, described in
// the README's "Configuration" section. Variables already in the real environment win over the file's, so a file
// written for one machine never overrides what a container or a shell sets.
//
// Node has util.parseEnv and process.loadEnvFile (Node 20.12+), but they skip a line they cannot read without a word;
// an operator's mistyped line would then silently leave a default in force. This reader refuses it, naming the file
// and the line. It reads the common forms: `NAME=value`, optionally after `export `; blank lines
// and `#` comments; values unquoted (trimmed, ending at ` #`), in single quotes (literal) or in double quotes (`\n`,
// `\t` and `\"` escapes). A value spans one line.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Env } from './read.ts';

export class EnvFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    problem: string,
  ) {
    super(`${file} line ${line}: ${problem}`);
    this.name = 'EnvFileError';
  }
}

const LINE = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/;

/** The variables of an env file's text; `file` names it in errors. */
export function parseEnvFile(text: string, file: string): Record<string, string> {
  const vars: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fail = (problem: string): never => {
      throw new EnvFileError(file, i + 1, problem);
    };
    const m = LINE.exec(line) ?? fail('expected NAME=value (a name of letters, digits and _)');
    vars[m[1]!] = value(m[2]!, fail);
  });
  return vars;
}

function value(rest: string, fail: (problem: string) => never): string {
  const quote = rest[0];
  if (quote !== '"' && quote !== "'") return rest.replace(/(^|\s+)#.*$/, '').trim();
  let out = '';
  for (let i = 1; i < rest.length; i++) {
    const ch = rest[i]!;
    if (ch === quote) {
      const after = rest.slice(i + 1).trim();
      if (after !== '' && !after.startsWith('#')) fail(`unexpected text after the closing ${quote}`);
      return out;
    }
    if (quote === '"' && ch === '\\' && i + 1 < rest.length) {
      const next = rest[++i]!;
      out += next === 'n' ? '\n' : next === 'r' ? '\r' : next === 't' ? '\t' : next;
      continue;
    }
    out += ch;
  }
  return fail(`no closing ${quote} (a value spans one line)`);
}

/**
 * `env` with the variables of `.env` in `cwd` added under it: a variable `env` has (even set to empty) keeps its
 * value. `env` itself when there is no such file.
 */
export function withEnvFile(env: Env, cwd: string = process.cwd()): Env {
  const file = resolve(cwd, '.env');
  if (!existsSync(file)) return env;
  const merged: Env = { ...env };
  for (const [name, value] of Object.entries(parseEnvFile(readFileSync(file, 'utf8'), file))) {
    if (merged[name] === undefined) merged[name] = value;
  }
  return merged;
}
