// How a command's outcome reaches the terminal: a result as text or, with --json, as one JSON document on stdout;
// a failure as one line on stderr (with the usage for a usage error) or, with --json, as one JSON object on stderr,
// `{"error": code, "message": …}` (src/cli/command.ts, ErrorCode). Exit statuses are the same in both modes.
import {
  CliError,
  type Command,
  type CommandResult,
  type ErrorCode,
  EXIT_FAILURE,
  type Io,
  println,
  UsageError,
} from './command.ts';
import { PROGRAM, usageLine } from './help.ts';

export function printResult(io: Io, json: boolean, result: CommandResult): void {
  if (json) {
    println(io.stdout, JSON.stringify(result.json, null, 2));
    return;
  }
  if (result.text !== '') println(io.stdout, result.text);
  for (const note of result.notes ?? []) println(io.stderr, note);
}

interface Failure {
  code: ErrorCode;
  status: number;
  message: string;
  suggestions: readonly string[];
}

// Errors from the database layer are told apart by name, so this module (loaded for --help and --version too) does
// not load the database drivers.
function describe(err: unknown, command: Command | undefined): Failure {
  if (err instanceof CliError) {
    return {
      code: err.code,
      status: err.status,
      message: err.message,
      suggestions: err instanceof UsageError ? err.suggestions : [],
    };
  }
  const name = (err as Error | undefined)?.name;
  const message = (err as Error | undefined)?.message ?? String(err);
  if (name === 'DataDirInUseError') {
    // The holder has no socket (yet): most often a server still initialising its database.
    return {
      code: 'in_use',
      status: EXIT_FAILURE,
      message: `${message} If it is a server that is starting, try again once it listens.`,
      suggestions: [],
    };
  }
  if (name === 'MigrationError') return { code: 'migration', status: EXIT_FAILURE, message, suggestions: [] };
  // Unexpected: the message without a stack; database errors carry no secrets in their messages.
  const what = command ? `${command.name.join(' ')} failed: ` : '';
  return { code: 'unexpected', status: EXIT_FAILURE, message: `${what}${message}`, suggestions: [] };
}

/**
 * Reports a failure and returns the exit status. `help` follows a usage error in text mode: the command's usage
 * line by default, or the given text (e.g. the list of commands after an unknown one).
 */
export function reportFailure(
  io: Io,
  json: boolean,
  err: unknown,
  command: Command | undefined,
  help?: string,
): number {
  const f = describe(err, command);
  if (json) {
    const body: Record<string, unknown> = { error: f.code, message: f.message };
    if (f.suggestions.length > 0) body.did_you_mean = f.suggestions;
    println(io.stderr, JSON.stringify(body));
    return f.status;
  }
  println(io.stderr, `${PROGRAM}: ${f.message}`);
  if (f.code === 'usage') {
    if (help !== undefined) println(io.stderr, `\n${help}`);
    else if (command) {
      println(io.stderr, usageLine(command));
      println(io.stderr, `Run '${PROGRAM} ${command.name.join(' ')} --help' for more.`);
    }
  }
  return f.status;
}
