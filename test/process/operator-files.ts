// Readers for the operator files checked by container.test.ts: the Dockerfile's instructions, the small part of YAML
// that docker-compose.yml uses (no dependency for it), and .env.example. Each reader throws on anything it does not
// understand rather than guess, so a check can never pass on a misreading.

export interface Instruction {
  keyword: string;
  args: string;
  /** 0 for the first FROM's stage, 1 for the next… */
  stage: number;
}

/** Instructions in order, with `\` continuations joined and comments dropped. */
export function parseDockerfile(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (current === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push(`${current}${line.trim()}`);
    current = '';
  }
  if (current !== '') throw new Error('the Dockerfile ends inside a continued line');
  let stage = -1;
  return logical.map((line) => {
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`cannot read Dockerfile line: ${line}`);
    const keyword = m[1]!.toUpperCase();
    if (keyword === 'FROM') stage++;
    return { keyword, args: m[2]!, stage };
  });
}

/** An exec-form argument list: ["node", "dist/main.js"]. */
export function execForm(args: string): string[] {
  if (!args.startsWith('[')) throw new Error(`not in exec form: ${args}`);
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string'))
    throw new Error(`not a list: ${args}`);
  return parsed;
}

/** `ENV A=1 B=two` → {A: '1', B: 'two'} (the key=value form only). */
export function envPairs(args: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  const rest = args.replace(
    /([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)\s*/g,
    (_, key: string, raw: string, quoted) => {
      pairs[key] = quoted ?? raw;
      return '';
    },
  );
  if (rest.trim() !== '') throw new Error(`cannot read ENV ${args}`);
  return pairs;
}

export type Yaml = string | null | Yaml[] | { [key: string]: Yaml };

interface Line {
  indent: number;
  text: string;
  number: number;
}

/** Block mappings, block sequences of scalars, quoted and plain scalars, JSON-style flow sequences, comments. */
export function parseYaml(text: string): Yaml {
  const lines: Line[] = [];
  text.split('\n').forEach((raw, i) => {
    const content = stripComment(raw).trimEnd();
    if (content.trim() === '') return;
    if (/^\s*\t/.test(content)) throw new Error(`line ${i + 1}: tabs are not allowed in YAML indentation`);
    lines.push({ indent: content.length - content.trimStart().length, text: content.trim(), number: i + 1 });
  });
  if (lines.length === 0) return null;
  const [value, next] = parseBlock(lines, 0, lines[0]!.indent);
  if (next !== lines.length) throw new Error(`line ${lines[next]!.number}: unexpected indentation`);
  return value;
}

function parseBlock(lines: Line[], start: number, indent: number): [Yaml, number] {
  if (lines[start]!.text === '-' || lines[start]!.text.startsWith('- ')) {
    const items: Yaml[] = [];
    let i = start;
    while (i < lines.length && lines[i]!.indent === indent && /^-( |$)/.test(lines[i]!.text)) {
      const item = lines[i]!.text.slice(1).trim();
      if (item === '' || /^[^"'[]*:( |$)/.test(item)) {
        throw new Error(`line ${lines[i]!.number}: only scalar sequence items are supported`);
      }
      items.push(parseScalar(item, lines[i]!.number));
      i++;
    }
    return [items, i];
  }
  const map: { [key: string]: Yaml } = {};
  let i = start;
  while (i < lines.length && lines[i]!.indent === indent) {
    const line = lines[i]!;
    const m = /^([A-Za-z0-9_.-]+):(?: (.*))?$/.exec(line.text);
    if (!m) throw new Error(`line ${line.number}: expected "key: value", got ${line.text}`);
    const key = m[1]!;
    if (key in map) throw new Error(`line ${line.number}: duplicate key ${key}`);
    const inline = m[2]?.trim() ?? '';
    i++;
    if (inline !== '') {
      map[key] = parseScalar(inline, line.number);
    } else if (i < lines.length && lines[i]!.indent > indent) {
      [map[key], i] = parseBlock(lines, i, lines[i]!.indent);
    } else {
      map[key] = null;
    }
  }
  if (i < lines.length && lines[i]!.indent > indent) {
    throw new Error(`line ${lines[i]!.number}: unexpected indentation`);
  }
  return [map, i];
}

function parseScalar(text: string, line: number): Yaml {
  if (text.startsWith('"')) return JSON.parse(text) as string;
  if (text.startsWith("'")) {
    if (!text.endsWith("'")) throw new Error(`line ${line}: unterminated string`);
    return text.slice(1, -1).replace(/''/g, "'");
  }
  if (text.startsWith('[')) {
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'string')) {
      throw new Error(`line ${line}: only flow sequences of double-quoted strings are supported`);
    }
    return parsed;
  }
  if (/^[{&*!|>]/.test(text)) throw new Error(`line ${line}: unsupported YAML: ${text}`);
  return text;
}

/** The line without a `#` comment (one at the start, or after a space, outside quotes). */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === '#' && (i === 0 || /\s/.test(line[i - 1]!))) {
      return line.slice(0, i);
    }
  }
  return line;
}

export function mapping(value: Yaml | undefined, what: string): { [key: string]: Yaml } {
  if (value === null || value === undefined || typeof value === 'string' || Array.isArray(value)) {
    throw new Error(`${what} is not a mapping`);
  }
  return value;
}

export function sequence(value: Yaml | undefined, what: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
    throw new Error(`${what} is not a list`);
  return value as string[];
}

/** Compose's `${NAME:-default}` and `${NAME-default}` with NAME unset: the default. */
export function interpolateDefaults(value: string): string {
  if (/\$(?!\{)[A-Za-z_]/.test(value)) throw new Error(`unsupported interpolation in ${value}`);
  return value.replace(
    /\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}/g,
    (_, fallback: string | undefined) => fallback ?? '',
  );
}

/** The `NAME=value` lines of an env file, and the comment lines just above each. */
export function parseEnvFile(text: string): { name: string; value: string; comment: string[] }[] {
  const entries: { name: string; value: string; comment: string[] }[] = [];
  let comment: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') {
      comment = [];
    } else if (line.startsWith('#')) {
      comment.push(line.replace(/^#\s?/, ''));
    } else {
      const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
      if (!m) throw new Error(`cannot read env line: ${line}`);
      entries.push({ name: m[1]!, value: m[2]!, comment });
      comment = [];
    }
  }
  return entries;
}
