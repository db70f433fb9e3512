// LOG_LEVEL=silent means no line at all, also from the routes that log only warnings (/readyz, /introspect, assets):
// their route level never makes a quieter configured level louder. At info, the same failure is logged as a warning,
// which shows the check below can fail.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { captureLogs } from '../helpers/log-capture.ts';
import { startServer } from '../helpers/server.ts';

async function readinessFailureLogs(level: 'silent' | 'info'): Promise<string[]> {
  const logs = captureLogs('info');
  logs.logger.level = level;
  const server = await startServer('pglite', { env: { LOG_LEVEL: level }, logger: logs.logger });
  try {
    await server.database.db.close();
    const res = await fetch(`${server.url}/readyz`);
    assert.equal(res.status, 503);
    const introspection = await fetch(`${server.url}/introspect`, { method: 'POST', body: 'token=x' });
    assert.equal(introspection.status, 400);
    return [...logs.raw];
  } finally {
    await server.app.close();
  }
}

describe('quiet routes and LOG_LEVEL', () => {
  it('at LOG_LEVEL=silent, a failed readiness check writes nothing', async () => {
    assert.deepEqual(await readinessFailureLogs('silent'), []);
  });

  it('at LOG_LEVEL=info, the same failure is logged as a warning', async () => {
    const lines = await readinessFailureLogs('info');
    assert.ok(
      lines.some((l) => l.includes('readiness check failed')),
      lines.join('\n'),
    );
  });
});
