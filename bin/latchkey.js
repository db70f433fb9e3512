#!/usr/bin/env node
// The `latchkey` admin command. Runs the compiled CLI (built by `npm install` / `npm run build`).
import('../dist/cli.js').catch((err) => {
  process.stderr.write(
    `latchkey: ${err?.code === 'ERR_MODULE_NOT_FOUND' ? 'not built yet; run `npm run build`' : err}\n`,
  );
  process.exit(1);
});
