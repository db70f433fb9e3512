#!/usr/bin/env node
// The `latchkey` admin command. Runs the compiled CLI (built by `npm install` / `npm run build`). Run it directly
// (`./bin/latchkey.js …`, `node bin/latchkey.js …`, `npm run -s cli -- …`) or as `npx latchkey …`.
import { existsSync } from 'node:fs';
import module from 'node:module';

// Node 22.1+ keeps compiled code between runs, which makes every later start quicker; older Node lacks it.
module.enableCompileCache?.();

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('latchkey: not built yet; run `npm run build`\n');
  process.exit(1);
}
import(cli.href).catch((err) => {
  process.stderr.write(`latchkey: ${err?.stack ?? err}\n`);
  process.exit(1);
});
