#!/usr/bin/env node
// The `latchkey` admin command. Runs the compiled CLI (built by `npm install` / `npm run build`).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('latchkey: not built yet; run `npm run build`\n');
  process.exit(1);
}
import(cli.href).catch((err) => {
  process.stderr.write(`latchkey: ${err?.stack ?? err}\n`);
  process.exit(1);
});
