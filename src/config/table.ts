// The machinery behind the configuration table in src/config.ts: one row per Config field, each row reading exactly
// one environment variable. The variable's name is learnt from the row itself (the one name it reads when run
// against a recording environment), so a row cannot read a variable the table does not list: at start each row is
// handed an environment holding its own variable and nothing else. Defaults are learnt the same way, from what each
// row returns when its variable is unset, so the documented default is the parser's by construction.
import type { Env } from './read.ts';

export interface Row<T, C> {
  /** One line, shown in the README's configuration table and in .env.example. */
  meaning: string;
  /**
   * What leaving the variable unset means, for a default an operator cannot write as a value (computed from another
   * variable, built in, or nothing at all). Its .env.example line is then `NAME=`, which also means unset.
   */
  unset?: string;
  /** Starts a new group in .env.example. */
  section?: string;
  /** Reads the row's variable from `env`; `earlier` holds the values of the rows above it. */
  read(env: Env, earlier: Partial<C>): T;
}

export type Rows<C> = { [K in keyof C]: Row<C[K], C> };

export interface Variable {
  /** The environment variable. */
  name: string;
  /** The Config field it sets. */
  field: string;
  meaning: string;
  section: string | undefined;
  /** The value that means "the default" in an env file: the default itself, or empty for unset. */
  envDefault: string;
  /** The default as the README shows it. */
  shownDefault: string;
}

export interface Table<C> {
  /** Every variable, in table order. */
  variables: readonly Variable[];
  load(env: Env): C;
}

export function configTable<C>(rows: Rows<C>): Table<C> {
  const entries = Object.entries(rows) as [string, Row<unknown, C>][];
  const defaults: Record<string, unknown> = {};
  const variables: Variable[] = entries.map(([field, row]) => {
    const read = new Set<string>();
    const recording = new Proxy({} as Env, {
      get: (_, key) => {
        if (typeof key === 'string') read.add(key);
        return undefined;
      },
    });
    const value = row.read(recording, defaults as Partial<C>);
    defaults[field] = value;
    if (read.size !== 1) {
      throw new Error(
        `configuration row ${field} must read one variable, read ${[...read].join(', ') || 'none'}`,
      );
    }
    const name = [...read][0]!;
    const envDefault = row.unset === undefined ? written(field, value) : '';
    return {
      name,
      field,
      meaning: row.meaning,
      section: row.section,
      envDefault,
      shownDefault: row.unset ?? `\`${envDefault}\``,
    };
  });
  const names = variables.map((v) => v.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new Error(`configuration variable ${twice} is read by two rows`);

  return {
    variables,
    load(env) {
      const config: Record<string, unknown> = {};
      for (const [i, [field, row]] of entries.entries()) {
        const { name } = variables[i]!;
        config[field] = row.read({ [name]: env[name] }, config as Partial<C>);
      }
      return config as C;
    },
  };
}

/** A value an earlier row produced; the table's order guarantees it is there. */
export function earlier<C, K extends keyof C>(config: Partial<C>, field: K): C[K] {
  const value = config[field];
  if (value === undefined) throw new Error(`configuration row order: ${String(field)} must come earlier`);
  return value as C[K];
}

/** A default as it is written in an env file. */
function written(field: string, value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string')
    return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value.join(',');
  throw new Error(
    `configuration row ${field}: its default is not a plain value, so the row needs an "unset" text`,
  );
}
