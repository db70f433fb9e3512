// The `latchkey` admin command (bin/latchkey.js runs the compiled form of this file). Importing it runs it.
//
// Adding commands: write a module in src/cli/ that exports `Command` objects (src/cli/command.ts) and list them in
// COMMANDS below; help, argument parsing (with "did you mean"), configuration, the database, --json and error
// reporting come for free. A command returns what it did, once, as a CommandResult, and never prints its result
// itself: src/cli/run.ts prints it as text or, with --json, as JSON. For example, src/cli/clients.ts exports
//
//   export const clientAddCommand: Command = {
//     name: ['client', 'add'],                       // `latchkey client add …`; `latchkey client --help` lists the group
//     summary: 'Register a client',
//     args: [{ name: 'NAME', description: 'the name shown on the consent page' }],
//     options: { 'redirect-uri': { type: 'string', value: 'URI', description: '…' } },
//     async run(ctx, args) {
//       const stores = await ctx.stores();            // the database opened once, migrated, closed by the runner
//       …                                             // through the stores, never Prisma directly
//       return fieldsResult(                          // `key: value` lines, or that object as JSON
//         { client_id: client.clientId, client_secret: secret },
//         ['The secret is shown only now; store it safely.'], // notes: stderr, text mode only
//       );
//     },
//   };
//   export const clientCommands: readonly Command[] = [clientAddCommand, clientListCommand, …];
//
// and COMMANDS gets `...clientCommands`. Lists return listResult(items, columns, empty) (src/cli/table.ts): the items
// are the JSON array, the columns the table. Throw UsageError for bad input (exit 2, with the usage line) and
// CliError for failures the user can act on (exit 1); anything else is reported as an unexpected failure (exit 1).
// URLs of Latchkey itself come from ctx.issuer() (the running server's ISSUER), not ctx.config.issuer.
// Never print a secret except a new one that the command exists to hand out, once.
import { accountCommands } from './cli/accounts.ts';
import { auditCommand } from './cli/audit.ts';
import { clientCommands } from './cli/clients.ts';
import type { Command } from './cli/command.ts';
import { doctorCommand } from './cli/doctor.ts';
import { grantCommands } from './cli/grants.ts';
import { migrateCommand } from './cli/migrate.ts';
import { resourceCommands } from './cli/resources.ts';
import { runCli } from './cli/run.ts';
import { traceCommand } from './cli/trace.ts';
import { upstreamCommands } from './cli/upstream.ts';
import { userCommands } from './cli/users.ts';
import { EnvFileError, withEnvFile } from './config/env-file.ts';

export const COMMANDS: readonly Command[] = [
  migrateCommand,
  ...userCommands,
  ...accountCommands,
  ...clientCommands,
  ...resourceCommands,
  ...grantCommands,
  ...upstreamCommands,
  auditCommand,
  doctorCommand,
  traceCommand,
];

// The same configuration as the server started in this directory: the environment, over ./.env when present.
let env: Record<string, string | undefined> | undefined;
try {
  env = withEnvFile(process.env);
} catch (err) {
  if (!(err instanceof EnvFileError)) throw err;
  process.stderr.write(`latchkey: invalid configuration: ${err.message}\n`);
}
process.exitCode = env ? await runCli(process.argv.slice(2), COMMANDS, { env }) : 2;
