// The help texts: the program's (every command), a group's (`latchkey user --help`) and a command's.
import type { Command } from './command.ts';

export const PROGRAM = 'latchkey';

export function usageLine(command: Command): string {
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

export function mainHelp(commands: readonly Command[]): string {
  return [
    `usage: ${PROGRAM} <command> [options]`,
    '',
    'Administers a Latchkey authorization server.',
    '',
    'commands:',
    commandList(commands),
    '',
    'options for every command:',
    formatPairs([
      ['--json', 'print the result as JSON on stdout (errors as JSON on stderr)'],
      ['-h, --help', 'show help'],
    ]),
    `  ${PROGRAM} --version prints the version.`,
    '',
    'The database is the one the server uses: DATABASE_URL when set; otherwise the embedded database in',
    'DATA_DIR (default ./data), reached through the running server when there is one.',
    `Run '${PROGRAM} <command> --help' for a command's options.`,
  ].join('\n');
}

export function groupHelp(members: readonly Command[]): string {
  return [
    `usage: ${PROGRAM} ${members[0]!.name[0]} <command> [options]`,
    '',
    'commands:',
    commandList(members),
  ].join('\n');
}

export function commandHelp(command: Command): string {
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
  options.push(['--json', 'print the result as JSON'], ['-h, --help', 'show this help']);
  lines.push('', 'options:', formatPairs(options));
  return lines.join('\n');
}

function formatPairs(pairs: readonly [string, string][]): string {
  const width = Math.max(...pairs.map(([left]) => left.length));
  return pairs.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`).join('\n');
}
