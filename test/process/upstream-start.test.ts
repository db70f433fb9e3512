// Starting the server with upstream providers and the embedded database (spec federation §2, §7): one start line per
// provider with its exact redirect URI; no UPSTREAM_TOKEN_KEYS → DATA_DIR/upstream-token-keys is generated (0600) and
// reused on restart; identities of a provider no longer configured are reported at start, and nothing is revoked.
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openEmbedded } from '../../src/db/embedded.ts';
import { spawnServer, tempDir } from '../helpers/server-process.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

describe('starting with upstream providers (node dist/main.js)', () => {
  it('logs each redirect URI, generates the key file once, and warns about unconfigured providers', async () => {
    const dir = await tempDir('latchkey-upstream-start-');
    cleanups.push(dir.remove);
    const dataDir = join(dir.path, 'data');
    const provider = {
      id: 'corp',
      type: 'oidc',
      name: 'Corp',
      issuer: 'https://sso.example.com',
      client_id: 'latchkey',
      client_secret: 'a-client-secret-never-logged',
    };
    const env = {
      DATA_DIR: dataDir,
      ISSUER: 'https://auth.example.com',
      UPSTREAM_PROVIDERS: JSON.stringify([provider]),
    };

    const first = spawnServer({ env });
    await first.listening;
    const line = await first.logged('upstream provider configured');
    assert.equal(line.provider, 'corp');
    assert.equal(line.type, 'oidc');
    assert.equal(line.redirect_uri, 'https://auth.example.com/login/upstream/corp/callback');
    const keyFile = join(dataDir, 'upstream-token-keys');
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    const key = await readFile(keyFile, 'utf8');
    assert.match(key, /^gen-\d{8}:[A-Za-z0-9_-]{43}\n$/);
    assert.deepEqual(await first.stop(), { code: 0, signal: null });
    assert.doesNotMatch(first.stdout(), /a-client-secret-never-logged/);

    // An identity of a provider that is not configured (a renamed or removed entry).
    const db = await openEmbedded({ dataDir });
    try {
      const user = await db.prisma.user.create({ data: { email: 'orphan@example.com' } });
      await db.prisma.upstreamIdentity.create({ data: { userId: user.id, provider: 'gone', subject: 's' } });
    } finally {
      await db.close();
    }

    const second = spawnServer({ env });
    await second.listening;
    const warned = await second.logged('upstream identities exist for providers that are not configured');
    assert.deepEqual(warned.providers, ['gone']);
    assert.equal(await readFile(keyFile, 'utf8'), key, 'the same key after a restart');
    assert.deepEqual(await second.stop(), { code: 0, signal: null });
  });
});
