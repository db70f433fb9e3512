// A command's arguments: its options and positionals checked against its declaration, with messages in plain words
// ("unknown option '--clinet'; did you mean '--client'?") instead of the parser's own.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { type Command, type ParsedArgs, UsageError } from './command.ts';
import { didYouMean, nearest } from './suggest.ts';

type ParseOptions = NonNullable<ParseArgsConfig['options']>;

function parserOptions(command: Command): ParseOptions {
  const options: ParseOptions = {};
  for (const [name, spec] of Object.entries(command.options ?? {})) {
    options[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true } : {}),
    };
  }
  return options;
}

/** The option as it was written: `--name` or `-n`. */
function written(token: { rawName: string }): string {
  return token.rawName;
}

export function parseCommandArgs(command: Command, rest: readonly string[]): ParsedArgs {
  const options = parserOptions(command);
  const declared = command.options ?? {};
  // A lenient pass first, to say exactly what is wrong with an option; then the strict parse.
  const { tokens } = parseArgs({
    args: [...rest],
    options,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const spec = declared[token.name];
    if (!spec) {
      const known = Object.keys(declared).map((n) => `--${n}`);
      const suggestions = token.rawName.startsWith('--') ? nearest(token.rawName, known) : [];
      throw new UsageError(`unknown option '${written(token)}'${didYouMean(suggestions)}`, suggestions);
    }
    if (spec.type === 'string' && token.value === undefined) {
      throw new UsageError(`option '${written(token)}' needs a value${spec.value ? ` (${spec.value})` : ''}`);
    }
    if (spec.type === 'boolean' && token.inlineValue) {
      throw new UsageError(`option '${written(token)}' takes no value`);
    }
  }
  let parsed: ParsedArgs;
  try {
    const r = parseArgs({ args: [...rest], options, allowPositionals: true, strict: true });
    parsed = { values: r.values as ParsedArgs['values'], positionals: r.positionals };
  } catch (err) {
    // What the lenient pass did not catch (e.g. a value that looks like an option): the parser's words, trimmed.
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
      throw new UsageError((err as Error).message.split('. ')[0]!);
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
