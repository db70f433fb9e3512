// What a `latchkey` command is: a name, its arguments and options (for parsing and --help), and a run function that
// returns what it did as a CommandResult. src/cli.ts holds the table of commands and src/cli/run.ts does everything
// around them (help, parsing, configuration, opening and closing the database, printing the result as text or
// --json, turning errors into messages and exit statuses).
import type { Config } from '../config.ts';
import type { Stores } from '../store/index.ts';
import type { CliDatabase } from './database.ts';
import { printable } from './table.ts';

/** Exit statuses: the command did its work; it failed; it was called wrongly (usage, input or configuration). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * What `--json` prints on stderr for a failure, `{"error": code, "message": …}`: `usage` (exit 2: wrong arguments,
 * with `did_you_mean` when a near name exists), `configuration` (exit 2), `failed` (exit 1: the command could not do
 * it, e.g. no such user), `in_use` (exit 1: another process holds the embedded database), `migration` (exit 1),
 * `unexpected` (exit 1).
 */
export type ErrorCode = 'usage' | 'configuration' | 'failed' | 'in_use' | 'migration' | 'unexpected';

/** An expected failure: printed as one line, no stack, and the process exits with `status`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly status: number = EXIT_FAILURE,
    readonly code: ErrorCode = status === EXIT_USAGE ? 'usage' : 'failed',
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The command was called wrongly; the message is followed by the command's usage line. */
export class UsageError extends CliError {
  constructor(
    message: string,
    /** Near names of what was mistyped, best first ("did you mean"). */
    readonly suggestions: readonly string[] = [],
  ) {
    super(message, EXIT_USAGE, 'usage');
    this.name = 'UsageError';
  }
}

/**
 * What a command did, in two forms: `json`, printed by `--json` as one JSON document on stdout, and `text`, the lines
 * printed otherwise. `notes` (text mode only, on stderr) are words for the person at the terminal, e.g. that a
 * secret is shown only once; what a program needs belongs in `json`.
 */
export interface CommandResult {
  readonly json: unknown;
  readonly text: string;
  readonly notes?: readonly string[];
  /** The exit status once printed (default EXIT_OK): a check that found problems reports them and exits 1. */
  readonly status?: number;
}

/**
 * A result whose text is `key: value` lines (the keys are the JSON object's, so both forms read alike), with control
 * characters in stored text made harmless (printable).
 */
export function fieldsResult(
  fields: Readonly<Record<string, string | number | boolean | null | readonly string[]>>,
  notes?: readonly string[],
): CommandResult {
  const text = Object.entries(fields)
    .map(
      ([k, v]) => `${k}: ${printable(Array.isArray(v) ? v.join(' ') || '-' : v === null ? '-' : String(v))}`,
    )
    .join('\n');
  return { json: fields, text, ...(notes && { notes }) };
}

/** A result that says one thing done: the text is the sentence, the JSON the object. */
export function doneResult(text: string, json: Record<string, unknown>): CommandResult {
  return { json, text };
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** A string option that may be given several times (values arrive as a list). */
  multiple?: boolean;
  /** Placeholder shown in help for a string option's value, e.g. 'NAME'. */
  value?: string;
  description: string;
}

export interface ArgumentSpec {
  /** Shown in usage, e.g. 'EMAIL'. */
  name: string;
  description: string;
}

export interface Io {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export interface DatabaseOptions {
  /**
   * Whether the schema must be current first (default true): an embedded database opened directly is migrated;
   * a server's database or Postgres with pending migrations is an error that says to run `latchkey migrate`.
   */
  requireMigrated?: boolean;
}

export interface CommandContext {
  readonly config: Config;
  readonly io: Io;
  /** Whether the output is JSON (--json): nothing but the result may then reach stdout. */
  readonly json: boolean;
  /** Opens the database the configuration selects, once; src/cli.ts closes it after the command. */
  database(options?: DatabaseOptions): Promise<CliDatabase>;
  /** The stores over that (migrated) database: commands read and write only through them (README: How it is built). */
  stores(): Promise<Stores>;
  /**
   * Latchkey's public base URL for URLs a command prints: the ISSUER the server last started with on this database
   * (so it is the server's, whatever this command's environment says), else this command's own configuration.
   */
  issuer(): Promise<{ issuer: string; from: 'server' | 'environment' }>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export interface Command {
  /** The words that call it: ['user', 'add']. */
  readonly name: readonly string[];
  /** One line for the command list. */
  readonly summary: string;
  /** Further paragraphs for `--help`, if the summary is not enough. */
  readonly description?: string;
  /** Required positional arguments, in order. */
  readonly args?: readonly ArgumentSpec[];
  readonly options?: Readonly<Record<string, OptionSpec>>;
  run(ctx: CommandContext, args: ParsedArgs): Promise<CommandResult>;
}

export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** Every value of a `multiple` string option, in the order given. */
export function listOption(args: ParsedArgs, name: string): string[] {
  const v = args.values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export function booleanOption(args: ParsedArgs, name: string): boolean {
  return args.values[name] === true;
}

/** Writes one line to a stream. */
export function println(stream: NodeJS.WritableStream, line = ''): void {
  stream.write(`${line}\n`);
}
