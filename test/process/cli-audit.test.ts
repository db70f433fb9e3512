// Issue 11, acceptance 2 (the audit trail; README: Audit trail): after sign-ins that fail and succeed, consent given
// and refused, code exchanges, a refresh replay, revocations by the person (/apps), by the client (/revoke, RFC 7009)
// and by the operator, and CLI changes to clients, resource servers and users, `latchkey audit --json` shows each
// event once with the right actor and outcome; --user and --client filter. A running server on each database (the
// CLI reaches the embedded one through the server's socket).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { calculateS256Challenge } from '../../src/oauth/pkce.ts';
import { FormBrowser } from '../helpers/browser.ts';
import { failSignIn, newDataDir } from '../helpers/cli-users.ts';
import { createPostgresDatabase, DB_KINDS } from '../helpers/db.ts';
import { runCli, type ServerProcess, spawnServer } from '../helpers/server-process.ts';

const REDIRECT = 'http://127.0.0.1:9/callback';
const PASSWORD = 'the flow password 1';

interface Event {
  action: string;
  outcome: string;
  actor: string;
  subject: string | null;
  user: string | null;
  client_id: string | null;
  resource: string | null;
  address: string | null;
  detail: Record<string, unknown> | null;
}

async function post(url: string, body: Record<string, string>) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(body),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, string> };
}

async function registerClient(url: string): Promise<string> {
  const res = await fetch(`${url}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'audited app',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
    }),
  });
  assert.equal(res.status, 201);
  return ((await res.json()) as { client_id: string }).client_id;
}

/** Signs in (in `browser`), approves or refuses, and for an approval exchanges the code: the tokens. */
async function flow(
  url: string,
  clientId: string,
  browser: FormBrowser,
  decision: 'approve' | 'deny' = 'approve',
) {
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL(`${url}/authorize`);
  authorize.search = new URLSearchParams({
    client_id: clientId,
    redirect_uri: REDIRECT,
    response_type: 'code',
    code_challenge: calculateS256Challenge(verifier),
    code_challenge_method: 'S256',
    state: 's',
    resource: 'https://mcp.example.com',
  }).toString();
  const callback = await browser.authorize(
    authorize.href,
    { email: 'flow@example.com', password: PASSWORD },
    decision,
  );
  if (decision === 'deny') return undefined;
  const code = callback.searchParams.get('code');
  assert.ok(code, callback.href);
  const t = await post(`${url}/token`, {
    grant_type: 'authorization_code',
    code,
    code_verifier: verifier,
    redirect_uri: REDIRECT,
    client_id: clientId,
  });
  assert.equal(t.status, 200, JSON.stringify(t.body));
  return t.body as { refresh_token: string };
}

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`latchkey audit [${kind}]`, { skip: !DB_KINDS.includes(kind) }, () => {
    let server: ServerProcess;
    let url: string;
    let env: Record<string, string>;
    let drop = async () => {};

    const cli = async (...args: string[]) => {
      const r = await runCli(args, { env, input: args.includes('--password-stdin') ? `${PASSWORD}\n` : '' });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const audit = async (...args: string[]): Promise<Event[]> =>
      JSON.parse(await cli('audit', '--json', ...args));

    before(async () => {
      const where: Record<string, string> = {};
      if (kind === 'postgres') {
        const created = await createPostgresDatabase();
        where.DATABASE_URL = created.url;
        drop = created.drop;
      } else {
        where.DATA_DIR = await newDataDir();
      }
      env = {
        ...where,
        // A replay after rotation revokes the grant at once (no reuse window).
        REFRESH_REUSE_WINDOW: '0',
        RESOURCE_SERVERS: JSON.stringify([
          { uri: 'https://mcp.example.com', client_id: 'rs-audit', client_secret: 'x'.repeat(40) },
        ]),
      };
      server = spawnServer({ env });
      url = await server.listening;
      env.ISSUER = url;
    });
    after(async () => {
      await server.stop();
      await drop();
    });

    // One run in steps (each a test of its own, in order), so that no single test holds every spawn and sign-in of
    // the run under the runner's per-test timeout on a busy machine: the later steps read what the earlier wrote.
    let clientId = '';
    let operatorClient = '';
    let events: Event[] = [];
    let flowId = '';

    it('runs sign-ins, consent, code exchanges, a replay and revocations by the person, the client and the operator', async () => {
      await cli('user', 'add', 'flow@example.com', '--password-stdin');
      await failSignIn(url, 'flow@example.com');
      await failSignIn(url, 'nobody@example.com');
      clientId = await registerClient(url);

      // Approved, exchanged, rotated; then the spent refresh token is replayed: the grant ends (by replay).
      const first = (await flow(url, clientId, new FormBrowser(url)))!;
      const rotated = await post(`${url}/token`, {
        grant_type: 'refresh_token',
        refresh_token: first.refresh_token,
        client_id: clientId,
      });
      assert.equal(rotated.status, 200);
      const replay = await post(`${url}/token`, {
        grant_type: 'refresh_token',
        refresh_token: first.refresh_token,
        client_id: clientId,
      });
      assert.equal(replay.body.error, 'invalid_grant');

      // The client revokes its refresh token (RFC 7009); the person ends the app on /apps; the operator a grant.
      const second = (await flow(url, clientId, new FormBrowser(url)))!;
      assert.equal(
        (await post(`${url}/revoke`, { token: second.refresh_token, client_id: clientId })).status,
        200,
      );
      const person = new FormBrowser(url);
      await flow(url, clientId, person);
      const ended = await person.submit(await person.request('/apps'), '/apps/revoke');
      assert.ok(ended.status < 400, `${ended.status}`);
      await flow(url, clientId, new FormBrowser(url), 'deny');
      await flow(url, clientId, new FormBrowser(url));
      const [live] = JSON.parse(await cli('grant', 'list', '--json')) as { id: string }[];
      await cli('grant', 'revoke', live!.id);
    });

    it("runs the operator's CLI changes to clients, resource servers and users", async () => {
      const added = await cli('client', 'add', '--name', 'Operator App', '--redirect-uri', REDIRECT);
      operatorClient = /^client_id: (.+)$/m.exec(added)![1]!;
      await cli('client', 'delete', operatorClient);
      await cli('resource', 'add', 'https://other.example.com/mcp', '--name', 'Other');
      await cli('resource', 'rotate-secret', 'https://other.example.com/mcp');
      await cli('resource', 'delete', 'https://other.example.com/mcp');
      await cli('user', 'invite', 'invited@example.com');
      await cli('user', 'disable', 'flow@example.com');
      await cli('user', 'enable', 'flow@example.com');
      await cli('user', 'delete', 'invited@example.com');
    });

    it('shows each event of the run once, with the right actor and outcome', async () => {
      assert.ok(clientId && operatorClient, 'the run above completed');
      events = await audit('--limit', '1000');
      const users = JSON.parse(await cli('user', 'list', '--json')) as { id: string; email: string }[];
      flowId = users.find((u) => u.email === 'flow@example.com')!.id;
      const key = (e: Event) => [e.action, e.outcome, e.actor, e.client_id ?? '-'].join(' ');
      const counts = new Map<string, number>();
      for (const e of events) counts.set(key(e), (counts.get(key(e)) ?? 0) + 1);
      const me = `user:${flowId}`;
      const expected: [string, number][] = [
        ['config_applied success system -', 1],
        ['user_added success operator -', 2],
        ['sign_in failure ' + me + ' -', 1],
        ['sign_in failure system -', 1],
        [`client_registered success client:${clientId} ${clientId}`, 1],
        ['sign_in success ' + me + ' -', 5],
        [`consent success ${me} ${clientId}`, 2],
        [`consent denied ${me} ${clientId}`, 1],
        [`grant_created success ${me} ${clientId}`, 4],
        [`grant_revoked success replay ${clientId}`, 1],
        [`grant_revoked success client:${clientId} ${clientId}`, 1],
        [`grant_revoked success ${me} ${clientId}`, 1],
        [`grant_revoked success operator ${clientId}`, 1],
        [`client_registered success operator ${operatorClient}`, 1],
        [`client_deleted success operator ${operatorClient}`, 1],
        ['resource_server_added success operator -', 1],
        ['resource_server_rotated success operator -', 1],
        ['resource_server_deleted success operator -', 1],
        ['user_invited success operator -', 1],
        ['user_disabled success operator -', 1],
        ['user_enabled success operator -', 1],
        ['user_deleted success operator -', 1],
      ];
      assert.deepEqual(new Map(expected), counts, JSON.stringify(events, null, 1));

      // Who each event is about: the person by id (their email shown beside it), never an email in the event.
      const failedUnknown = events.find((e) => e.action === 'sign_in' && e.actor === 'system')!;
      assert.equal(failedUnknown.subject, null);
      assert.equal(failedUnknown.user, null);
      const replayed = events.find((e) => e.actor === 'replay')!;
      assert.deepEqual(
        [replayed.subject, replayed.user, replayed.resource, replayed.detail?.reason],
        [flowId, 'flow@example.com', 'https://mcp.example.com', 'refresh_replay'],
      );
      const signIn = events.find((e) => e.action === 'sign_in' && e.outcome === 'success')!;
      assert.equal(signIn.address, '127.0.0.1');
      assert.equal(
        events.find((e) => e.action === 'resource_server_rotated')!.resource,
        'https://other.example.com/mcp',
      );
      assert.ok(
        !JSON.stringify(events.map((e) => [e.subject, e.detail, e.actor])).includes('@'),
        'no email stored',
      );
    });

    it('--user, --client, --limit and --since narrow what it shows', async () => {
      assert.ok(flowId && events.length > 0, 'the events above were read');
      // --user: the events about that person; --client: those of that client.
      const mine = await audit('--user', 'flow@example.com', '--limit', '1000');
      assert.ok(mine.length >= 15);
      assert.ok(mine.every((e) => e.subject === flowId));
      const ofClient = await audit('--client', clientId, '--limit', '1000');
      assert.equal(ofClient.length, 12);
      assert.ok(ofClient.every((e) => e.client_id === clientId));
      // --limit keeps the newest; --since a date to come finds nothing yet.
      const [newest] = await audit('--limit', '1');
      assert.equal(newest!.action, 'user_deleted');
      assert.deepEqual(await audit('--since', '2999-01-01'), []);
      assert.equal((await audit('--since', '1h', '--limit', '1000')).length, events.length);
    });
  });
}
