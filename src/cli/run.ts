// Everything around a command: finding it in the table, --help, parsing its arguments, loading the configuration,
// opening (and always closing) the database, and turning errors into one-line messages and exit statuses.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.ts';
import { DataDirInUseError } from '../db/embedded.ts';
import { MigrationError, migrate } from '../db/migrate.ts';
import { createStores, type Stores } from '../store/index.ts';
import {
  CliError,
  type Command,
  type CommandContext,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  type Io,
  type ParsedArgs,
  println,
  UsageError,
} from './command.ts';
import { type CliDatabase, openCliDatabase, pendingMigrations } from './database.ts';

const PROGRAM = 'latchkey';

export interface RunOptions {
  io?: Io;
  env?: Record<string, string | undefined>;
}

export async function runCli(
  argv: readonly string[],
  commands: readonly Command[],
  { io = processIo(), env = process.env }: RunOptions = {},
): Promise<number> {
  const [first] = argv;
  if (first === undefined) {
    println(io.stderr, mainHelp(commands));
    return EXIT_USAGE;
  }
  if (isHelp(first) || first === 'help') {
    println(io.stdout, mainHelp(commands));
    return EXIT_OK;
  }

  const command = findCommand(commands, argv);
  if (!command) return unknownCommand(argv, commands, io);
  const rest = argv.slice(command.name.length);
  const endOfOptions = rest.indexOf('--');
  if ((endOfOptions === -1 ? rest : rest.slice(0, endOfOptions)).some(isHelp)) {
    println(io.stdout, commandHelp(command));
    return EXIT_OK;
  }

  let opened: CliDatabase | undefined;
  let stores: Stores | undefined;
  let status: number;
  try {
    const args = parseCommandArgs(command, rest);
    let config: ReturnType<typeof loadConfig>;
    try {
      config = loadConfig(env);
    } catch (err) {
      if (err instanceof ConfigError) throw new CliError(`invalid configuration: ${err.message}`, EXIT_USAGE);
      throw err;
    }
    const ctx: CommandContext = {
      config,
      io,
      async database(options = {}) {
        opened ??= await openCliDatabase(config);
        if (options.requireMigrated !== false) await ensureMigrated(opened, io);
        return opened;
      },
      async stores() {
        const { db } = await this.database();
        stores ??= createStores(db.prisma);
        return stores;
      },
    };
    await command.run(ctx, args);
    status = EXIT_OK;
  } catch (err) {
    status = report(err, command, io);
  }
  if (opened) {
    try {
      await opened.db.close();
    } catch (err) {
      // For a directly opened embedded database this is where its files are flushed and its lock released.
      println(io.stderr, `${PROGRAM}: could not close the database: ${(err as Error).message}`);
      status = EXIT_FAILURE;
    }
  }
  return status;
}

function processIo(): Io {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
}

function isHelp(arg: string): boolean {
  return arg === '--help' || arg === '-h';
}

/** The command whose name is the longest prefix of argv. */
function findCommand(commands: readonly Command[], argv: readonly string[]): Command | undefined {
  let found: Command | undefined;
  for (const c of commands) {
    if (c.name.every((word, i) => argv[i] === word) && (!found || c.name.length > found.name.length))
      found = c;
  }
  return found;
}

function unknownCommand(argv: readonly string[], commands: readonly Command[], io: Io): number {
  const [group, sub] = argv;
  const members = commands.filter((c) => c.name.length > 1 && c.name[0] === group);
  if (members.length === 0) {
    println(io.stderr, `${PROGRAM}: unknown command '${group}'\n\n${mainHelp(commands)}`);
    return EXIT_USAGE;
  }
  // `latchkey user --help` lists the group; `latchkey user` alone or `latchkey user frob` is a usage error.
  if (sub !== undefined && isHelp(sub)) {
    println(io.stdout, groupHelp(members));
    return EXIT_OK;
  }
  const what = sub === undefined ? `'${group}' needs a command` : `unknown command '${group} ${sub}'`;
  println(io.stderr, `${PROGRAM}: ${what}\n\n${groupHelp(members)}`);
  return EXIT_USAGE;
}

function parseCommandArgs(command: Command, rest: readonly string[]): ParsedArgs {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, spec] of Object.entries(command.options ?? {})) {
    options[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true } : {}),
    };
  }
  let parsed: ParsedArgs;
  try {
    const r = parseArgs({ args: [...rest], options, allowPositionals: true, strict: true });
    parsed = { values: r.values as ParsedArgs['values'], positionals: r.positionals };
  } catch (err) {
    // parseArgs reports unknown options and missing option values as TypeErrors with ERR_PARSE_ARGS_* codes.
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
      throw new UsageError((err as Error).message);
    throw err;
  }
  const expected = command.args ?? [];
  if (parsed.positionals.length < expected.length) {
    throw new UsageError(`missing ${expected[parsed.positionals.length]!.name}`);
  }
  if (parsed.positionals.length > expected.length) {
    throw new UsageError(`unexpected argument '${parsed.positionals[expected.length]}'`);
  }
  return parsed;
}

async function ensureMigrated(opened: CliDatabase, io: Io): Promise<void> {
  if (opened.route === 'direct') {
    // Nobody else has this directory open: bring it up to date, as the server would at start.
    await migrate(opened.db, { onApplied: (name) => println(io.stderr, `applied migration ${name}`) });
    return;
  }
  const pending = await pendingMigrations(opened.db);
  if (pending.length > 0) {
    throw new CliError(
      `the database (${opened.where}) lacks ${pending.length} migration(s): ${pending.join(', ')}. ` +
        `Run '${PROGRAM} migrate' first.`,
    );
  }
}

function report(err: unknown, command: Command, io: Io): number {
  if (err instanceof UsageError) {
    println(io.stderr, `${PROGRAM}: ${err.message}\n${usageLine(command)}`);
    println(io.stderr, `Run '${PROGRAM} ${command.name.join(' ')} --help' for more.`);
    return err.status;
  }
  if (err instanceof CliError) {
    println(io.stderr, `${PROGRAM}: ${err.message}`);
    return err.status;
  }
  if (err instanceof DataDirInUseError) {
    // The holder has no socket (yet): most often a server still initialising its database.
    println(
      io.stderr,
      `${PROGRAM}: ${err.message} If it is a server that is starting, try again once it listens.`,
    );
    return EXIT_FAILURE;
  }
  if (err instanceof MigrationError) {
    println(io.stderr, `${PROGRAM}: ${err.message}`);
    return EXIT_FAILURE;
  }
  // Unexpected: the message without a stack; database errors carry no secrets in their messages.
  println(
    io.stderr,
    `${PROGRAM}: ${command.name.join(' ')} failed: ${(err as Error)?.message ?? String(err)}`,
  );
  return EXIT_FAILURE;
}

function usageLine(command: Command): string {
  const args = (command.args ?? []).map((a) => ` ${a.name}`).join('');
  const options = Object.keys(command.options ?? {}).length > 0 ? ' [options]' : '';
  return `usage: ${PROGRAM} ${command.name.join(' ')}${args}${options}`;
}

function commandList(commands: readonly Command[]): string {
  return formatPairs(
    commands.map((c) => [
      `${c.name.join(' ')}${(c.args ?? []).map((a) => ` ${a.name}`).join('')}`,
      c.summary,
    ]),
  );
}

function mainHelp(commands: readonly Command[]): string {
  return [
    `usage: ${PROGRAM} <command> [options]`,
    '',
    'Administers a Latchkey authorization server.',
    '',
    'commands:',
    commandList(commands),
    '',
    'The database is the one the server uses: DATABASE_URL when set; otherwise the embedded database in',
    'DATA_DIR (default ./data), reached through the running server when there is one.',
    `Run '${PROGRAM} <command> --help' for a command's options.`,
  ].join('\n');
}

function groupHelp(members: readonly Command[]): string {
  return [
    `usage: ${PROGRAM} ${members[0]!.name[0]} <command> [options]`,
    '',
    'commands:',
    commandList(members),
  ].join('\n');
}

function commandHelp(command: Command): string {
  const lines = [usageLine(command), '', command.summary];
  if (command.description) lines.push('', command.description);
  const args = command.args ?? [];
  if (args.length > 0) {
    lines.push('', 'arguments:', formatPairs(args.map((a) => [a.name, a.description])));
  }
  const options = Object.entries(command.options ?? {}).map(([name, spec]): [string, string] => [
    `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.value ? ` ${spec.value}` : ''}`,
    spec.description,
  ]);
  options.push(['-h, --help', 'show this help']);
  lines.push('', 'options:', formatPairs(options));
  return lines.join('\n');
}

function formatPairs(pairs: readonly [string, string][]): string {
  const width = Math.max(...pairs.map(([left]) => left.length));
  return pairs.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`).join('\n');
}
