// The test helpers themselves: a test server that fails to start (here, its port taken) closes what it had started,
// so the test file's process still exits and the runner reports the failure instead of waiting on it forever (seen in
// CI: a federated server's listen failed with EADDRINUSE, and its file never exited).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { forEachDatabase } from '../helpers/db.ts';
import { tempDir } from '../helpers/server-process.ts';

const helpers = pathToFileURL(join(import.meta.dirname, '../helpers/server.ts')).href;

forEachDatabase('a test server that cannot listen', (kind) => {
  it('rejects, and leaves nothing that keeps the process alive', async () => {
    const dir = await tempDir();
    after(() => dir.remove());
    const script = join(dir.path, 'start-on-taken-port.mts');
    writeFileSync(
      script,
      `import net from 'node:net';
import { startServer } from ${JSON.stringify(helpers)};
const blocker = net.createServer();
await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve));
const port = blocker.address().port;
try {
  await startServer(${JSON.stringify(kind)}, { port });
  console.log('started');
} catch (err) {
  console.log('refused', err.code);
}
blocker.close();
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    // A bound on the wait, not a timing assertion: without the fix the process never exits.
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const [code, signal] = await once(child, 'exit');
    clearTimeout(timer);
    assert.equal(out.trim(), 'refused EADDRINUSE');
    assert.deepEqual([code, signal], [0, null], 'the process exited on its own');
  });
});
