// Issue 11, acceptance 3: `latchkey trace CLIENT_ID` shows the steps of a flow that stopped once the code was issued
// and names that as the diagnosis, and shows a redirect-URI mismatch as such. Against a server process (dist/main.js)
// on each database, as an operator runs it: the flows are served, the server stops (writing the steps it still held),
// then the command reads them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { calculateS256Challenge } from '../../src/oauth/pkce.ts';
import { FormBrowser } from '../helpers/browser.ts';
import { addUser, newDataDir, registerClient } from '../helpers/cli-users.ts';
import { createPostgresDatabase, DB_KINDS } from '../helpers/db.ts';
import { freePort } from '../helpers/net.ts';
import { runCli, spawnServer } from '../helpers/server-process.ts';

const RESOURCE = 'https://mcp.example.com/mcp';
const CALLBACK = 'http://127.0.0.1:9/callback';

function authorizeUrl(url: string, clientId: string, redirectUri = CALLBACK): string {
  const u = new URL(`${url}/authorize`);
  u.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: redirectUri,
    response_type: 'code',
    code_challenge: calculateS256Challenge(randomBytes(32).toString('base64url')),
    code_challenge_method: 'S256',
    state: 'trace',
    resource: RESOURCE,
  }).toString();
  return u.href;
}

for (const kind of DB_KINDS) {
  describe(`latchkey trace [${kind}]`, () => {
    let env: Record<string, string>;
    let stalled: string;
    let mismatched: string;
    let drop = async () => {};

    before(async () => {
      if (kind === 'postgres') {
        const database = await createPostgresDatabase();
        env = { DATABASE_URL: database.url };
        drop = database.drop;
      } else {
        env = { DATA_DIR: await newDataDir() };
      }
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const server = spawnServer({
        env: {
          ...env,
          PORT: String(port),
          ISSUER: url,
          RESOURCE_SERVERS: JSON.stringify([
            { uri: RESOURCE, client_id: 'rs-trace-test', client_secret: 'y'.repeat(40) },
          ]),
        },
      });
      await server.logged('latchkey is ready');
      const password = 'trace test password';
      assert.equal((await addUser(env, 'trace@example.com', password)).code, 0);

      // Signs in, approves, gets a code, and never calls /token.
      stalled = await registerClient(url, 'stalled client');
      const callback = await new FormBrowser(url).authorize(authorizeUrl(url, stalled), {
        email: 'trace@example.com',
        password,
      });
      assert.ok(callback.searchParams.get('code'), callback.href);

      // Asks for a redirect URI it never registered: an error page, no redirect.
      mismatched = await registerClient(url, 'mismatched client');
      const page = await fetch(authorizeUrl(url, mismatched, 'http://127.0.0.1:9/other-callback'), {
        redirect: 'manual',
      });
      assert.equal(page.status, 400);

      assert.deepEqual(
        await server.stop(),
        { code: 0, signal: null },
        'a clean stop writes the queued steps',
      );
    });
    after(() => drop());

    it('shows authorize → sign-in → consent → code issued, and names a code issued but never redeemed', async () => {
      const text = await runCli(['trace', stalled], { env });
      assert.equal(text.code, 0, text.stderr);
      const lines = text.stdout.trimEnd().split('\n');
      assert.match(lines[0]!, /^client .*: stalled client \(dynamic\)$/);
      assert.match(lines[1]!, /^TIME\s+STEP\s+OUTCOME\s+RESOURCE\s+DETAIL$/);
      const steps = lines.slice(2, -2).map((l) => l.split(/\s{2,}/).slice(1, 3));
      assert.deepEqual(steps, [
        ['registration', 'ok'],
        ['authorize', 'ok'],
        ['sign_in', 'ok'],
        ['authorize', 'ok'],
        ['consent', 'given'],
        ['code_issued', 'ok'],
      ]);
      assert.match(lines.at(-1)!, /^diagnosis: code issued but never redeemed: /);

      const json = await runCli(['trace', stalled, '--json', '--limit', '2'], { env });
      assert.equal(json.code, 0, json.stderr);
      const parsed = JSON.parse(json.stdout) as {
        steps: { step: string; outcome: string; resource: string | null }[];
        diagnosis: { kind: string };
      };
      assert.deepEqual(
        parsed.steps.map((s) => [s.step, s.outcome, s.resource]),
        [
          ['consent', 'given', RESOURCE],
          ['code_issued', 'ok', RESOURCE],
        ],
      );
      assert.equal(parsed.diagnosis.kind, 'code_not_redeemed');
    });

    it('shows a redirect URI mismatch as such, with the URI the client asked for', async () => {
      const r = await runCli(['trace', mismatched], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /authorize\s+invalid_request\s+\S+\s+redirect_uri not registered: http:\/\/127\.0\.0\.1:9\/other-callback/,
      );
      assert.match(
        r.stdout,
        /\ndiagnosis: redirect URI mismatch: the client asked for http:\/\/127\.0\.0\.1:9\/other-callback /,
      );
    });

    it('says nothing was seen for an unknown client_id, and refuses a bad --limit', async () => {
      const none = await runCli(['trace', 'no-such-client'], { env });
      assert.equal(none.code, 0, none.stderr);
      assert.match(none.stdout, /no steps recorded\n\ndiagnosis: nothing seen/);
      const bad = await runCli(['trace', stalled, '--limit', 'many'], { env });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--limit must be a number/);
    });
  });
}
