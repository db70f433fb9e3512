// Everything around a command: finding it in the table (with a "did you mean" for a mistyped one), --help,
// --version, --json, parsing its arguments, loading the configuration, opening (and always closing) the database,
// and printing its result or its failure (src/cli/output.ts) with the exit status.
import type { ChangeWatch } from '../change-watch.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { packageVersion } from '../startup.ts';
import type { Stores } from '../store/index.ts';
import { parseCommandArgs } from './args.ts';
import {
  CliError,
  type Command,
  type CommandContext,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  type Io,
  println,
  UsageError,
} from './command.ts';
import type { CliDatabase } from './database.ts';
import { commandHelp, groupHelp, mainHelp, PROGRAM } from './help.ts';
import { printResult, reportFailure } from './output.ts';
import { didYouMean, nearest } from './suggest.ts';

export interface RunOptions {
  io?: Io;
  env?: Record<string, string | undefined>;
}

/** argv without the global --json (anywhere before a `--`), and whether it was there. */
function takeJsonFlag(argv: readonly string[]): { json: boolean; words: string[] } {
  const end = argv.indexOf('--');
  const head = end === -1 ? argv : argv.slice(0, end);
  const words = head.filter((a) => a !== '--json');
  return { json: words.length < head.length, words: [...words, ...(end === -1 ? [] : argv.slice(end))] };
}

export async function runCli(
  argv: readonly string[],
  commands: readonly Command[],
  { io = processIo(), env = process.env }: RunOptions = {},
): Promise<number> {
  const { json, words } = takeJsonFlag(argv);
  const [first] = words;
  if (first === undefined) {
    return reportFailure(io, json, new UsageError('no command given'), undefined, mainHelp(commands));
  }
  if (first === '--version' || first === '-V') {
    const version = packageVersion();
    printResult(io, json, { json: { version }, text: `${PROGRAM} ${version}` });
    return EXIT_OK;
  }
  if (isHelp(first) || first === 'help') {
    println(io.stdout, mainHelp(commands));
    return EXIT_OK;
  }

  const command = findCommand(commands, words);
  if (!command) return unknownCommand(words, commands, io, json);
  const rest = words.slice(command.name.length);
  const endOfOptions = rest.indexOf('--');
  if ((endOfOptions === -1 ? rest : rest.slice(0, endOfOptions)).some(isHelp)) {
    println(io.stdout, commandHelp(command));
    return EXIT_OK;
  }

  let opened: CliDatabase | undefined;
  let stores: Stores | undefined;
  let watch: ChangeWatch | undefined;
  let status: number;
  try {
    const args = parseCommandArgs(command, rest);
    let config: ReturnType<typeof loadConfig>;
    try {
      config = loadConfig(env);
    } catch (err) {
      if (err instanceof ConfigError)
        throw new CliError(`invalid configuration: ${err.message}`, EXIT_USAGE, 'configuration');
      throw err;
    }
    const ctx: CommandContext = {
      config,
      io,
      json,
      // The database modules load only for commands that use them: --help and --version stay quick.
      async database(options = {}) {
        const { openCliDatabase, ensureMigrated } = await import('./database.ts');
        opened ??= await openCliDatabase(config, (line) => {
          if (!json) println(io.stderr, line);
        });
        if (options.requireMigrated !== false) {
          await ensureMigrated(opened, (name) => {
            if (!json) println(io.stderr, `applied migration ${name}`);
          });
        }
        return opened;
      },
      async stores() {
        const opened = await this.database();
        const { db } = opened;
        // Commands change things through the stores: a change must reach every running instance before the command
        // ends, so the channels are listened to before anything is written (src/change-watch.ts). An embedded
        // database has one instance, which hears the change as it commits.
        if (opened.route === 'postgres' && !watch) {
          const { watchChanges } = await import('../change-watch.ts');
          watch = await watchChanges(db, { warn: (message) => println(io.stderr, `warning: ${message}`) });
        }
        const { createStores } = await import('../store/index.ts');
        stores ??= createStores(db);
        return stores;
      },
      async issuer() {
        const recorded = await (await this.stores()).settings.get('issuer');
        return recorded
          ? { issuer: recorded, from: 'server' }
          : { issuer: config.issuer, from: 'environment' };
      },
    };
    const result = await command.run(ctx, args);
    printResult(io, json, result);
    status = result.status ?? EXIT_OK;
  } catch (err) {
    status = reportFailure(io, json, err, command);
  }
  if (watch) {
    try {
      await watch.settle();
    } finally {
      await watch.close();
    }
  }
  if (opened) {
    try {
      await opened.db.close();
    } catch (err) {
      // For a directly opened embedded database this is where its files are flushed and its lock released.
      status = reportFailure(
        io,
        json,
        new CliError(`could not close the database: ${(err as Error).message}`, EXIT_FAILURE),
        command,
      );
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

function unknownCommand(
  argv: readonly string[],
  commands: readonly Command[],
  io: Io,
  json: boolean,
): number {
  const [group, sub] = argv as [string, string | undefined];
  const members = commands.filter((c) => c.name.length > 1 && c.name[0] === group);
  if (members.length === 0) {
    const suggestions = nearest(
      group,
      commands.map((c) => c.name[0]!),
    );
    const err = new UsageError(`unknown command '${group}'${didYouMean(suggestions)}`, suggestions);
    return reportFailure(io, json, err, undefined, mainHelp(commands));
  }
  // `latchkey user --help` lists the group; `latchkey user` alone or `latchkey user frob` is a usage error.
  if (sub !== undefined && isHelp(sub)) {
    println(io.stdout, groupHelp(members));
    return EXIT_OK;
  }
  if (sub === undefined) {
    return reportFailure(
      io,
      json,
      new UsageError(`'${group}' needs a command`),
      undefined,
      groupHelp(members),
    );
  }
  const suggestions = nearest(
    sub,
    members.map((c) => c.name[1]!),
  ).map((s) => `${group} ${s}`);
  const err = new UsageError(`unknown command '${group} ${sub}'${didYouMean(suggestions)}`, suggestions);
  return reportFailure(io, json, err, undefined, groupHelp(members));
}
