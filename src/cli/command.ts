// What a `latchkey` command is: a name, its arguments and options (for parsing and --help), and a run function.
// src/cli.ts holds the table of commands and does everything around them (help, parsing, configuration,
// opening and closing the database, turning errors into messages and exit statuses).
import type { Config } from '../config.ts';
import type { Stores } from '../store/index.ts';
import type { CliDatabase } from './database.ts';

/** Exit statuses: the command did its work; it failed; it was called wrongly (usage, input or configuration). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** An expected failure: printed as one line, no stack, and the process exits with `status`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly status: number = EXIT_FAILURE,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The command was called wrongly; the message is followed by the command's usage line. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
    this.name = 'UsageError';
  }
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
  /** Opens the database the configuration selects, once; src/cli.ts closes it after the command. */
  database(options?: DatabaseOptions): Promise<CliDatabase>;
  /** The stores over that (migrated) database: commands read and write only through them (README: How it is built). */
  stores(): Promise<Stores>;
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
  run(ctx: CommandContext, args: ParsedArgs): Promise<void>;
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
