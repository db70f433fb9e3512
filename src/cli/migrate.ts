// `latchkey migrate`: applies pending migrations (src/db/migrate.ts) and says what it did.
import { migrate } from '../db/migrate.ts';
import type { Command } from './command.ts';

export const migrateCommand: Command = {
  name: ['migrate'],
  summary: 'Apply pending database migrations',
  description:
    'The server also applies them when it starts. With an embedded database that a server is running on,\n' +
    'the migrations run inside that server, through its socket.',
  async run(ctx) {
    const { db, where } = await ctx.database({ requireMigrated: false });
    const modified: string[] = [];
    const result = await migrate(db, { onChecksumMismatch: (name) => modified.push(name) });
    const total = result.applied.length + result.alreadyApplied.length;
    const summary =
      result.applied.length === 0
        ? `nothing to apply: all ${total} migrations were already applied (${where})`
        : `applied ${result.applied.length} of ${total} migrations (${where})`;
    return {
      json: {
        database: where,
        applied: result.applied,
        already_applied: result.alreadyApplied.length,
        modified_after_applying: modified,
      },
      text: [...result.applied.map((name) => `applied ${name}`), summary].join('\n'),
      notes: modified.map(
        (name) => `warning: ${name} was changed after it was applied; it is not applied again`,
      ),
    };
  },
};
