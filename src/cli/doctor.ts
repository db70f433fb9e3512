// `latchkey doctor URL`: checks an MCP server and this Latchkey as Claude and the MCP SDK will meet them, step by
// step (src/doctor). Text mode prints each step with its fix; --json prints the report. Exit status 1 when any
// step fails. It reads the database only through the stores, and changes nothing.
import { runDoctor } from '../doctor/index.ts';
import { reportText } from '../doctor/report.ts';
import { booleanOption, type Command, EXIT_FAILURE, EXIT_OK, UsageError } from './command.ts';

export const doctorCommand: Command = {
  name: ['doctor'],
  summary: 'Check an MCP server and Latchkey as Claude and the MCP SDK will meet them',
  description:
    'Takes the steps a client takes (the 401 challenge, protected resource metadata, authorization server ' +
    'discovery, the resource registered here, the /authorize redirects, https, the clock) and prints each as ' +
    'PASS or FAIL with the fix. Needs no browser and changes nothing. Exit status 1 when a step fails.',
  args: [
    {
      name: 'URL',
      description: 'the MCP endpoint as clients are given it, e.g. https://mcp.example.com/mcp',
    },
  ],
  options: {
    register: {
      type: 'boolean',
      description: 'also register a client as Claude does (dynamic registration), then delete it',
    },
  },
  async run(ctx, args) {
    const url = args.positionals[0]!;
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol) || new URL(url).hash) {
      throw new UsageError(`"${url}" is not an absolute http(s) URL without a fragment`);
    }
    const stores = await ctx.stores();
    const { issuer, from } = await ctx.issuer();
    const report = await runDoctor({ url, issuer, stores, register: booleanOption(args, 'register') });
    const notes =
      from === 'environment'
        ? [`No server has started on this database yet: checked against this command's ISSUER (${issuer}).`]
        : [];
    return { json: report, text: reportText(report), notes, status: report.ok ? EXIT_OK : EXIT_FAILURE };
  },
};
