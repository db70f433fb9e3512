// Drift check: what prisma/schema.prisma says the database should look like, against what a migrated database
// actually holds. Both sides are reduced to the same flat form, a map from an object's identity ("column
// users.email") to a description written the way Postgres's catalog prints it ("text NOT NULL"), so that any
// difference reads as one line. Migration SQL is hand-written here (Prisma's schema engine cannot run offline),
// and this is what keeps it honest. The expected side mirrors what `prisma migrate diff` would emit for Postgres;
// schema features it does not model make it throw rather than pass silently.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { get_dmmf } from '@prisma/prisma-schema-wasm';
import type { SqlConnection } from '../../src/db/database.ts';
import { PACKAGE_ROOT } from '../../src/paths.ts';

export const SCHEMA_PATH = join(PACKAGE_ROOT, 'prisma', 'schema.prisma');

/** Object identity → its description. Keys look like `table users`, `column users.email`, `index users_pkey`. */
export type SchemaFacts = Map<string, string>;

/** Tables that exist for the migration tooling, not for the data model. */
const IGNORED_TABLES = new Set(['_prisma_migrations']);

// Postgres truncates identifiers to 63 bytes; Prisma shortens its default constraint names to fit.
const MAX_IDENTIFIER_LENGTH = 63;

// The subset of Prisma's DMMF (datamodel part) that the check reads.
interface DmmfField {
  name: string;
  dbName?: string | null;
  kind: 'scalar' | 'object' | 'enum' | 'unsupported';
  isList: boolean;
  isRequired: boolean;
  type: string;
  nativeType?: [string, string[]] | null;
  default?: unknown;
  relationName?: string;
  relationFromFields?: string[];
  relationToFields?: string[];
  relationOnDelete?: string;
  relationOnUpdate?: string;
}
interface DmmfModel {
  name: string;
  dbName: string | null;
  schema: string | null;
  fields: DmmfField[];
}
interface DmmfEnum {
  name: string;
  dbName?: string | null;
  values: { name: string; dbName: string | null }[];
}
interface DmmfIndex {
  model: string;
  type: 'id' | 'unique' | 'normal' | 'fulltext';
  dbName?: string;
  algorithm?: string;
  fields: { name: string; sortOrder?: 'asc' | 'desc'; operatorClass?: unknown; length?: number }[];
}
interface Datamodel {
  models: DmmfModel[];
  enums: DmmfEnum[];
  indexes: DmmfIndex[];
}

function parseSchema(schemaText: string): Datamodel {
  return (JSON.parse(get_dmmf(JSON.stringify({ prismaSchema: schemaText }))) as { datamodel: Datamodel })
    .datamodel;
}

/** Prisma's default constraint names (psl ConstraintNames), shortened to Postgres's identifier limit. */
function constraintName(table: string, columns: string[], suffix: '_key' | '_idx' | '_fkey'): string {
  const base = `${table}_${columns.join('_')}`;
  // Prisma cuts at limit - suffix length for indexes and at limit - 5 for foreign keys (both 4 + 1 here).
  const limit = MAX_IDENTIFIER_LENGTH - (suffix === '_fkey' ? 5 : suffix.length);
  return `${base.length >= limit ? base.slice(0, limit) : base}${suffix}`;
}

function primaryKeyName(table: string): string {
  const limit = MAX_IDENTIFIER_LENGTH - 5;
  return `${table.length >= limit ? table.slice(0, limit) : table}_pkey`;
}

/** How format_type() prints an identifier: bare when it is a plain lower-case name, quoted otherwise. */
function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

function columnType(model: DmmfModel, field: DmmfField, enums: Map<string, DmmfEnum>): string {
  let type: string;
  if (field.kind === 'enum') {
    const e = enums.get(field.type);
    type = quoteIdent(e?.dbName ?? field.type);
  } else {
    type = scalarType(field, `${model.name}.${field.name}`);
  }
  // Prisma renders scalar lists as Postgres arrays of the element type.
  return field.isList ? `${type}[]` : type;
}

function scalarType(field: DmmfField, where: string): string {
  const [native, args = []] = field.nativeType ?? [undefined, []];
  switch (`${field.type}${native ? `@${native}` : ''}`) {
    case 'String':
    case 'String@Text':
      return 'text';
    case 'String@Uuid':
      return 'uuid';
    case 'String@VarChar':
      return args.length ? `character varying(${args[0]})` : 'character varying';
    case 'Int':
    case 'Int@Integer':
      return 'integer';
    case 'Int@SmallInt':
      return 'smallint';
    case 'BigInt':
      return 'bigint';
    case 'Float':
      return 'double precision';
    case 'Boolean':
      return 'boolean';
    case 'DateTime':
      return 'timestamp(3) without time zone';
    case 'DateTime@Timestamp':
      return `timestamp(${args[0] ?? 3}) without time zone`;
    case 'DateTime@Timestamptz':
      return `timestamp(${args[0] ?? 3}) with time zone`;
    case 'DateTime@Date':
      return 'date';
    case 'Json':
      return 'jsonb';
    case 'Bytes':
      return 'bytea';
    default:
      throw new Error(
        `drift check: ${where} has type ${field.type} ${native ?? ''}, which it does not know yet`,
      );
  }
}

/** The default as pg_get_expr() prints it, or undefined when Prisma puts none in SQL. */
function columnDefault(table: string, column: string, field: DmmfField, sqlType: string): string | undefined {
  const d = field.default;
  if (d === undefined || d === null) return undefined;
  const where = `${table}.${column}`;
  if (typeof d === 'object' && !Array.isArray(d)) {
    const fn = d as { name: string; args: unknown[] };
    switch (fn.name) {
      case 'now':
        return 'CURRENT_TIMESTAMP';
      // Generated by the Prisma client, never by the database.
      case 'uuid':
      case 'cuid':
      case 'nanoid':
      case 'ulid':
        return undefined;
      case 'autoincrement':
        return `nextval(${quoteLiteral(`${table}_${column}_seq`)}::regclass)`;
      case 'dbgenerated':
        return String(fn.args[0]);
      default:
        throw new Error(`drift check: ${where} has default ${fn.name}(), which it does not know yet`);
    }
  }
  if (field.isList) throw new Error(`drift check: ${where} has a list default, which it does not know yet`);
  if (typeof d === 'boolean') return String(d);
  if (typeof d === 'number' && Number.isInteger(d) && (sqlType === 'integer' || sqlType === 'bigint')) {
    // Postgres keeps a negative constant as a cast literal.
    return d < 0 ? `${quoteLiteral(String(d))}::${sqlType}` : String(d);
  }
  if (typeof d === 'string' && field.kind === 'enum') return `${quoteLiteral(d)}::${sqlType}`;
  if (typeof d === 'string' && (sqlType === 'text' || sqlType === 'uuid' || sqlType === 'jsonb')) {
    return `${quoteLiteral(d)}::${sqlType}`;
  }
  throw new Error(
    `drift check: ${where} has default ${JSON.stringify(d)}, which it does not know how to render`,
  );
}

const REFERENTIAL_ACTIONS: Record<string, string> = {
  Cascade: 'CASCADE',
  Restrict: 'RESTRICT',
  NoAction: 'NO ACTION',
  SetNull: 'SET NULL',
  SetDefault: 'SET DEFAULT',
};

function describeColumn(type: string, notNull: boolean, dflt: string | undefined): string {
  return `${type} ${notNull ? 'NOT NULL' : 'NULL'}${dflt === undefined ? '' : ` DEFAULT ${dflt}`}`;
}

function describeIndex(
  kind: 'primary' | 'unique' | 'plain',
  table: string,
  method: string,
  columns: string[],
  included: string[] = [],
  predicate: string | null = null,
): string {
  const head = kind === 'primary' ? 'PRIMARY KEY' : kind === 'unique' ? 'UNIQUE INDEX' : 'INDEX';
  return (
    `${head} ON ${table} USING ${method} (${columns.join(', ')})` +
    (included.length ? ` INCLUDE (${included.join(', ')})` : '') +
    (predicate ? ` WHERE ${predicate}` : '')
  );
}

function describeForeignKey(
  table: string,
  columns: string[],
  refTable: string,
  refColumns: string[],
  onDelete: string,
  onUpdate: string,
): string {
  return `${table} (${columns.join(', ')}) REFERENCES ${refTable} (${refColumns.join(', ')}) ON DELETE ${onDelete} ON UPDATE ${onUpdate}`;
}

/** What the schema says the database holds, in the form {@link readDatabaseSchema} reads it. */
export function expectedSchema(schemaText: string): SchemaFacts {
  // The DMMF does not carry a relation's `map:` (its foreign key name), so a custom one cannot be checked.
  if (/@relation\([^)]*\bmap\s*:/.test(schemaText)) {
    throw new Error('drift check: @relation(map: ...) is not supported; the DMMF does not expose it');
  }
  if (/\brelationMode\s*=\s*"prisma"/.test(schemaText)) {
    throw new Error('drift check: relationMode = "prisma" (no foreign keys) is not supported');
  }
  const dm = parseSchema(schemaText);
  const facts: SchemaFacts = new Map();
  const enums = new Map(dm.enums.map((e) => [e.name, e]));
  const models = new Map(dm.models.map((m) => [m.name, m]));
  const tableOf = (m: DmmfModel) => m.dbName ?? m.name;
  const columnOf = (m: DmmfModel, fieldName: string) => {
    const f = m.fields.find((x) => x.name === fieldName);
    if (!f) throw new Error(`drift check: ${m.name} has no field ${fieldName}`);
    return f.dbName ?? f.name;
  };

  for (const e of dm.enums) {
    facts.set(`enum ${e.dbName ?? e.name}`, e.values.map((v) => quoteLiteral(v.dbName ?? v.name)).join(', '));
  }

  for (const m of dm.models) {
    if (m.schema) throw new Error(`drift check: ${m.name} uses @@schema, which it does not support`);
    const table = tableOf(m);
    facts.set(`table ${table}`, 'table');
    for (const f of m.fields) {
      if (f.kind === 'unsupported') throw new Error(`drift check: ${m.name}.${f.name} is Unsupported(...)`);
      if (f.kind === 'object') {
        const from = f.relationFromFields ?? [];
        if (from.length === 0) {
          const other = models.get(f.type)?.fields.find((x) => x.relationName === f.relationName && x !== f);
          if (f.isList && other?.isList) {
            throw new Error(`drift check: implicit many-to-many ${f.relationName} is not supported`);
          }
          continue; // the other side holds the foreign key
        }
        const target = models.get(f.type);
        if (!target) throw new Error(`drift check: ${m.name}.${f.name} points at unknown model ${f.type}`);
        const columns = from.map((n) => columnOf(m, n));
        // Prisma's defaults: SetNull when the relation is optional, Restrict when required; updates cascade.
        const optional = from.some((n) => !m.fields.find((x) => x.name === n)?.isRequired);
        const onDelete = REFERENTIAL_ACTIONS[f.relationOnDelete ?? (optional ? 'SetNull' : 'Restrict')];
        const onUpdate = REFERENTIAL_ACTIONS[f.relationOnUpdate ?? 'Cascade'];
        facts.set(
          `foreign key ${constraintName(table, columns, '_fkey')}`,
          describeForeignKey(
            table,
            columns,
            tableOf(target),
            (f.relationToFields ?? []).map((n) => columnOf(target, n)),
            onDelete!,
            onUpdate!,
          ),
        );
        continue;
      }
      const column = f.dbName ?? f.name;
      const type = columnType(m, f, enums);
      // Prisma emits no NOT NULL for scalar lists, so they are nullable in the database.
      const notNull = f.isRequired && !f.isList;
      facts.set(
        `column ${table}.${column}`,
        describeColumn(type, notNull, columnDefault(table, column, f, type)),
      );
    }
  }

  for (const ix of dm.indexes) {
    const m = models.get(ix.model);
    if (!m) throw new Error(`drift check: index on unknown model ${ix.model}`);
    if (ix.type === 'fulltext') throw new Error(`drift check: @@fulltext on ${ix.model} is not supported`);
    const table = tableOf(m);
    const bare = ix.fields.map((x) => columnOf(m, x.name));
    const columns = ix.fields.map((x, i) => {
      if (x.operatorClass !== undefined || x.length !== undefined) {
        throw new Error(`drift check: index options on ${ix.model}.${x.name} are not supported`);
      }
      return x.sortOrder === 'desc' ? `${bare[i]} DESC` : bare[i]!;
    });
    const method = (ix.algorithm ?? 'BTree').toLowerCase();
    if (ix.type === 'id') {
      facts.set(
        `index ${ix.dbName ?? primaryKeyName(table)}`,
        describeIndex('primary', table, method, columns),
      );
    } else {
      const unique = ix.type === 'unique';
      const name = ix.dbName ?? constraintName(table, bare, unique ? '_key' : '_idx');
      facts.set(`index ${name}`, describeIndex(unique ? 'unique' : 'plain', table, method, columns));
    }
  }
  return facts;
}

/** Reads the schema `prisma/schema.prisma` describes. */
export async function expectedSchemaFromFile(path: string = SCHEMA_PATH): Promise<SchemaFacts> {
  return expectedSchema(await readFile(path, 'utf8'));
}

interface ColumnRow {
  table_name: string;
  column_name: string;
  type: string;
  not_null: boolean;
  column_default: string | null;
}
interface IndexRow {
  index_name: string;
  table_name: string;
  is_primary: boolean;
  is_unique: boolean;
  method: string;
  key_count: number;
  columns: string[];
  predicate: string | null;
}
interface ForeignKeyRow {
  constraint_name: string;
  table_name: string;
  columns: string[];
  ref_table: string;
  ref_columns: string[];
  on_delete: string;
  on_update: string;
}

// Everything is read from pg_catalog in the connection's current schema (public): format_type() and
// pg_get_expr() print types and defaults exactly as Postgres understands them.
const TABLES_SQL = `
  SELECT c.relname AS table_name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')`;

const COLUMNS_SQL = `
  SELECT c.relname AS table_name, a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS type,
         a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS column_default
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`;

const ENUMS_SQL = `
  SELECT t.typname AS enum_name,
         array(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)::text[]
           AS enum_values
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE n.nspname = current_schema() AND t.typtype = 'e'`;

// indoption bit 0 is DESC; key 0 in indkey is an expression.
const INDEXES_SQL = `
  SELECT ic.relname AS index_name, tc.relname AS table_name, i.indisprimary AS is_primary,
         i.indisunique AS is_unique, am.amname AS method, i.indnkeyatts::int AS key_count,
         array(
           SELECT CASE WHEN k.attnum = 0 THEN '(expression)' ELSE a.attname::text END
                  || CASE WHEN k.ord <= i.indnkeyatts AND (i.indoption[(k.ord - 1)::int] & 1) = 1 THEN ' DESC' ELSE '' END
           FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
           LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
           ORDER BY k.ord
         )::text[] AS columns,
         pg_get_expr(i.indpred, i.indrelid) AS predicate
  FROM pg_index i
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_class tc ON tc.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = tc.relnamespace
  JOIN pg_am am ON am.oid = ic.relam
  WHERE n.nspname = current_schema()`;

const ACTION_SQL = (col: string) => `CASE ${col} WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT'
  WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END`;

const FOREIGN_KEYS_SQL = `
  SELECT con.conname AS constraint_name, tc.relname AS table_name, rc.relname AS ref_table,
         array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[]
           AS columns,
         array(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[]
           AS ref_columns,
         ${ACTION_SQL('con.confdeltype')} AS on_delete, ${ACTION_SQL('con.confupdtype')} AS on_update
  FROM pg_constraint con
  JOIN pg_class tc ON tc.oid = con.conrelid
  JOIN pg_class rc ON rc.oid = con.confrelid
  JOIN pg_namespace n ON n.oid = tc.relnamespace
  WHERE n.nspname = current_schema() AND con.contype = 'f'`;

/** What the database holds, read from its catalog on `c` (so it sees that connection's open transaction). */
export async function readDatabaseSchema(c: SqlConnection): Promise<SchemaFacts> {
  const facts: SchemaFacts = new Map();
  const keep = (table: string) => !IGNORED_TABLES.has(table);

  for (const r of await c.query<{ enum_name: string; enum_values: string[] }>(ENUMS_SQL)) {
    facts.set(`enum ${r.enum_name}`, r.enum_values.map(quoteLiteral).join(', '));
  }
  for (const r of await c.query<{ table_name: string }>(TABLES_SQL)) {
    if (keep(r.table_name)) facts.set(`table ${r.table_name}`, 'table');
  }
  for (const r of await c.query<ColumnRow>(COLUMNS_SQL)) {
    if (!keep(r.table_name)) continue;
    facts.set(
      `column ${r.table_name}.${r.column_name}`,
      describeColumn(r.type, r.not_null, r.column_default ?? undefined),
    );
  }
  for (const r of await c.query<IndexRow>(INDEXES_SQL)) {
    if (!keep(r.table_name)) continue;
    const kind = r.is_primary ? 'primary' : r.is_unique ? 'unique' : 'plain';
    const keys = r.columns.slice(0, r.key_count);
    const included = r.columns.slice(r.key_count);
    facts.set(
      `index ${r.index_name}`,
      describeIndex(kind, r.table_name, r.method, keys, included, r.predicate),
    );
  }
  for (const r of await c.query<ForeignKeyRow>(FOREIGN_KEYS_SQL)) {
    if (!keep(r.table_name)) continue;
    facts.set(
      `foreign key ${r.constraint_name}`,
      describeForeignKey(r.table_name, r.columns, r.ref_table, r.ref_columns, r.on_delete, r.on_update),
    );
  }
  return facts;
}

/**
 * Every difference between the expected and the actual schema, one line each, sorted:
 * `missing <key>: <expected>`, `unexpected <key>: <actual>`, or `<key>: expected <a>, found <b>`.
 */
export function compareSchemas(expected: SchemaFacts, actual: SchemaFacts): string[] {
  const differences: string[] = [];
  for (const [key, want] of expected) {
    const got = actual.get(key);
    if (got === undefined) differences.push(`missing ${key}: ${want}`);
    else if (got !== want) differences.push(`${key}: expected ${want}, found ${got}`);
  }
  for (const [key, got] of actual) {
    if (!expected.has(key)) differences.push(`unexpected ${key}: ${got}`);
  }
  return differences.sort();
}

/** The drift between prisma/schema.prisma (or `schemaText`) and the database behind `c`; empty when none. */
export async function findSchemaDrift(c: SqlConnection, schemaText?: string): Promise<string[]> {
  const expected = schemaText === undefined ? await expectedSchemaFromFile() : expectedSchema(schemaText);
  return compareSchemas(expected, await readDatabaseSchema(c));
}
