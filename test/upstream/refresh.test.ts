// The refresh every provider module offers to token exchange (spec federation §6.3 steps 4–5), classified:
// ok (new tokens) / invalid_grant (revoke) / unavailable (503, revoke nothing) / other (500, revoke nothing).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { ManualClock } from '../../src/lib/clock.ts';
import { limitedFetch } from '../../src/upstream/http.ts';
import { createProvider, type UpstreamProvider } from '../../src/upstream/providers/index.ts';
import { TEST_KEY_K1 } from '../helpers/federation.ts';
import { GitHubStandin } from '../helpers/github-standin.ts';
import { PlaneStandin } from '../helpers/plane-standin.ts';

function provider(entry: Record<string, unknown>): UpstreamProvider {
  const config = loadConfig({
    ISSUER: 'http://127.0.0.1:9',
    UPSTREAM_PROVIDERS: JSON.stringify([entry]),
    UPSTREAM_ALLOW_INSECURE_LOOPBACK: 'true',
    UPSTREAM_TOKEN_KEYS: TEST_KEY_K1,
  });
  return createProvider(config.upstreamProviders[0]!, {
    fetch: limitedFetch((url, init) => globalThis.fetch(url, init), 2),
    clock: new ManualClock(),
    allowInsecureLoopback: true,
    log: { warn() {} },
  });
}

describe('refresh outcomes', () => {
  let plane: PlaneStandin;
  let gh: GitHubStandin;
  before(async () => {
    plane = await PlaneStandin.start();
    gh = await GitHubStandin.start({ expiring: true });
  });
  after(async () => {
    await plane.close();
    await gh.close();
  });

  /** A refresh token the stand-in knows, as if issued at sign-in. */
  function planeRefreshToken(): string {
    const user = plane.addUser();
    const token = `plane_rt_test_${user.id}`;
    plane.refreshTokens.set(token, { userId: user.id, workspace: 'acme', scope: 'read write', active: true });
    return token;
  }

  test('Plane: ok (client_secret_post, no scope sent), invalid_grant, unavailable, other', async () => {
    const p = provider({
      id: 'plane',
      type: 'plane',
      client_id: plane.clientId,
      client_secret: plane.clientSecret,
      base_url: plane.baseUrl,
    });
    const ok = await p.refresh(planeRefreshToken());
    assert.equal(ok.kind, 'ok');
    assert.ok(
      ok.kind === 'ok' && ok.tokens.accessToken && ok.tokens.refreshToken && ok.tokens.expiresIn === 86400,
    );
    const body = plane.recorded('token').at(-1)!.body as Record<string, string>;
    assert.equal(body.grant_type, 'refresh_token');
    assert.equal(body.client_secret, plane.clientSecret);
    assert.equal(body.scope, undefined);

    plane.revokeAll = true;
    assert.deepEqual(await p.refresh(planeRefreshToken()), { kind: 'invalid_grant' });
    plane.revokeAll = false;

    plane.faults.status5xx = 503;
    assert.equal((await p.refresh(planeRefreshToken())).kind, 'unavailable');
    plane.faults.status5xx = false;

    const wrongSecret = provider({
      id: 'plane',
      type: 'plane',
      client_id: plane.clientId,
      client_secret: 'wrong',
      base_url: plane.baseUrl,
    });
    const other = await wrongSecret.refresh(planeRefreshToken());
    assert.equal(other.kind, 'other');
    assert.ok(other.kind === 'other' && other.error === 'invalid_client');

    await plane.setDown(true);
    try {
      assert.equal((await p.refresh(planeRefreshToken())).kind, 'unavailable');
    } finally {
      await plane.setDown(false);
    }
  });

  test('GitHub: 200 {"error":"bad_refresh_token"} is invalid_grant; expiring tokens refresh', async () => {
    const g = provider({
      id: 'github',
      type: 'github',
      client_id: gh.clientId,
      client_secret: gh.clientSecret,
      base_url: gh.url,
      api_base_url: gh.url,
    });
    const user = gh.addUser();
    gh.refreshTokens.set('ghr_test', { userId: user.id, scope: 'read:user', active: true });
    const ok = await g.refresh('ghr_test');
    assert.ok(ok.kind === 'ok' && ok.tokens.expiresIn === 28800 && ok.tokens.refreshExpiresIn === 15897600);
    assert.deepEqual(await g.refresh('ghr_test'), { kind: 'invalid_grant' }, 'the spent one');
  });
});
