// The sign-in page shows whatever sign-in methods the app was built with, and the login routes run them: a
// test-only redirect-style method (a stand-in "upstream" on loopback that sends the browser straight back) proves
// the seam the federation work plugs providers into, beside and without the password form.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { randomToken } from '../../src/lib/crypto.ts';
import { defaultSignInMethods, type RedirectSignInMethod, type SignInInput } from '../../src/signin/index.ts';
import type { Stores } from '../../src/store/index.ts';
import { FormBrowser, parseForms } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { authorizeUrl } from '../helpers/flow.ts';
import { addClient, addResourceServer, addUser, startServer, type TestServer } from '../helpers/server.ts';

/** A stand-in upstream: its authorization endpoint sends the browser straight back with a code. */
async function startStandIn(): Promise<{ origin: string; received: URL[]; close(): Promise<void> }> {
  const received: URL[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://stand-in.invalid');
    received.push(url);
    const back = new URL(url.searchParams.get('redirect_uri') ?? '');
    back.searchParams.set('state', url.searchParams.get('state') ?? '');
    back.searchParams.set('code', 'the-code');
    res.writeHead(302, { location: back.href }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A redirect-style method as the interface asks: state bound to the browser, single use, return_to kept. */
function fakeUpstream(stores: Stores, standIn: string, issuer: string) {
  const flows = new Map<string, { browserSecret: string | undefined; returnTo: string }>();
  const method: RedirectSignInMethod & { signsInAs: string; begun: SignInInput[] } = {
    id: 'fake',
    kind: 'redirect',
    label: 'Fake IdP',
    buttonLabel: 'Sign in with Fake IdP',
    signsInAs: '',
    begun: [],
    formTargets: () => [standIn],
    async begin(input) {
      method.begun.push(input);
      const state = randomToken();
      flows.set(state, { browserSecret: input.browserSecret, returnTo: input.returnTo });
      const location = new URL('/authorize', standIn);
      location.searchParams.set('state', state);
      location.searchParams.set('redirect_uri', `${issuer}/login/upstream/fake/callback`);
      return { kind: 'redirect', location: location.href };
    },
    async finish(input) {
      const state = input.param('state');
      const flow = state === undefined ? undefined : flows.get(state);
      if (!state || !flow) return { kind: 'incomplete' };
      flows.delete(state);
      if (flow.browserSecret !== input.browserSecret || input.param('code') !== 'the-code') {
        return { kind: 'invalid', returnTo: flow.returnTo };
      }
      const user = await stores.users.findByEmail(method.signsInAs);
      if (!user) return { kind: 'invalid', returnTo: flow.returnTo };
      return { kind: 'signed_in', userId: user.id, returnTo: flow.returnTo };
    },
  };
  return method;
}

forEachDatabase('sign-in page with configured methods', (kind) => {
  let standIn: Awaited<ReturnType<typeof startStandIn>>;
  before(async () => {
    standIn = await startStandIn();
  });
  after(() => standIn.close());

  describe('password form and a redirect method', () => {
    let server: TestServer;
    let fake: ReturnType<typeof fakeUpstream>;
    before(async () => {
      server = await startServer(kind, {
        signInMethods: (deps) => {
          fake = fakeUpstream(deps.stores, standIn.origin, deps.config.issuer);
          return [...defaultSignInMethods(deps), fake];
        },
      });
      await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
    });
    after(() => server.close());

    it('shows the password form and a button for the redirect method, and lets its target through the CSP', async () => {
      const page = await new FormBrowser(server.url).request('/login');
      assert.equal(page.status, 200);
      const forms = parseForms(page.html);
      assert.deepEqual(
        forms.map((f) => f.action),
        ['/login', '/login/upstream/fake'],
      );
      assert.match(page.html, /<input id="email" name="email"/);
      assert.match(page.html, /<button type="submit">Sign in with Fake IdP<\/button>/);
      assert.deepEqual(
        forms[1]!.fields.map((f) => f.name),
        ['csrf_token', 'return_to'],
      );
      assert.match(
        page.headers.get('content-security-policy') ?? '',
        new RegExp(`form-action 'self' ${standIn.origin};`),
      );
    });

    it('begins the method when its button is pressed, and the callback signs the person in and returns to return_to', async () => {
      const email = await addUser(server.stores);
      fake.signsInAs = email;
      const client = await addClient(server.stores, { name: 'Upstream App' });
      const returnTo = new URL(authorizeUrl(server, client));
      const b = new FormBrowser(server.url);
      const page = await b.request(
        `/login?return_to=${encodeURIComponent(returnTo.pathname + returnTo.search)}`,
      );
      const begun = await b.submit(page, '/login/upstream/fake');
      assert.equal(begun.status, 303);
      const location = new URL(begun.redirectedTo!);
      assert.equal(location.origin, standIn.origin);
      assert.equal(fake.begun.at(-1)?.returnTo, returnTo.pathname + returnTo.search);
      assert.equal(fake.begun.at(-1)?.browserSecret, b.cookies.get('latchkey_csrf'));

      // The stand-in sends the browser back to the callback, which starts the session and goes on to consent.
      const back = await b.request(location.href);
      assert.equal(back.status, 200);
      assert.match(back.html, /Allow Upstream App to access your account\?/);
      assert.ok(b.cookies.has('latchkey_session'));
      assert.match((await b.request('/')).html, new RegExp(`You are signed in as ${email}`));
    });

    it('refuses a callback that arrives in another browser, and starts no session', async () => {
      fake.signsInAs = await addUser(server.stores);
      const started = new FormBrowser(server.url);
      const begun = await started.submit(await started.request('/login'), '/login/upstream/fake');
      const upstream = await fetch(begun.redirectedTo!, { redirect: 'manual' });
      const callback = upstream.headers.get('location')!;
      const other = new FormBrowser(server.url);
      await other.request('/login');
      const res = await other.request(callback);
      assert.equal(res.status, 400);
      assert.match(res.html, /This sign-in could not be completed. Start again./);
      assert.equal(other.cookies.has('latchkey_session'), false);
    });

    it('does not begin without the form’s CSRF token, and answers 404 for a method that is not configured', async () => {
      const b = new FormBrowser(server.url);
      const page = await b.request('/login');
      const count = fake.begun.length;
      const forged = await b.submit(page, '/login/upstream/fake', { csrf_token: 'forged' });
      assert.equal(forged.status, 403);
      assert.match(forged.html, /This form expired. Please sign in again./);
      assert.equal(fake.begun.length, count);
      const unknown = await b.request('/login/upstream/nope', {
        method: 'POST',
        body: new URLSearchParams(),
      });
      assert.equal(unknown.status, 404);
      assert.deepEqual(JSON.parse(unknown.html), { error: 'not_found' });
      assert.equal((await b.request('/login/upstream/nope/callback?state=x')).status, 404);
    });
  });

  describe('a redirect method without the password form', () => {
    let server: TestServer;
    before(async () => {
      server = await startServer(kind, {
        signInMethods: (deps) => [fakeUpstream(deps.stores, standIn.origin, deps.config.issuer)],
      });
    });
    after(() => server.close());

    it('shows only the button, and POST /login answers 404', async () => {
      const b = new FormBrowser(server.url);
      const page = await b.request('/login');
      assert.equal(page.status, 200);
      assert.deepEqual(
        parseForms(page.html).map((f) => f.action),
        ['/login/upstream/fake'],
      );
      assert.doesNotMatch(page.html, /name="password"/);
      assert.match(page.html, /Sign in with Fake IdP/);
      const email = await addUser(server.stores);
      const csrf = parseForms(page.html)[0]!.fields.find((f) => f.name === 'csrf_token')!.value;
      const res = await b.request('/login', {
        method: 'POST',
        body: new URLSearchParams({ email, password: 'correct horse battery staple', csrf_token: csrf }),
      });
      assert.equal(res.status, 404);
      assert.equal(b.cookies.has('latchkey_session'), false);
    });
  });
});
