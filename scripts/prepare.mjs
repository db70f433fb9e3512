// Generates the Prisma client and compiles src/ to dist/. Runs on `npm install` (prepare) and `npm run build`.
// Every Prisma CLI command first tries to fetch a native schema engine; `prisma generate` never uses it, so
// pointing PRISMA_SCHEMA_ENGINE_BINARY at an existing file lets it run offline.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
env.PRISMA_HIDE_UPDATE_MESSAGE = '1';

function run(args) {
  const r = spawnSync(process.execPath, args, { cwd: root, env, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

run([join(root, 'node_modules/prisma/build/index.js'), 'generate', '--no-hints']);
if (existsSync(join(root, 'node_modules/typescript/bin/tsc'))) {
  run([join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
  // The example MCP server (examples/mcp-server), compiled so the container runs it with plain node.
  run([join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.examples.json']);
  // The embedded database's migrated data-directory template (src/db/template.ts), rebuilt only when a migration is
  // newer than it: an embedded first start loads it instead of running initdb and every migration.
  const template = pathToFileURL(join(root, 'dist/db/template.js')).href;
  run(['--input-type=module', '-e', `await (await import(${JSON.stringify(template)})).ensureTemplate();`]);
}
