// TEMPLATES_DIR: an operator's folder whose templates (and stylesheet) replace the built-in ones file by file.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { FormBrowser } from '../helpers/browser.ts';
import { forEachDatabase } from '../helpers/db.ts';
import { authorizeUrl, signedIn } from '../helpers/flow.ts';
import { addClient, addResourceServer, addUser, startServer, type TestServer } from '../helpers/server.ts';

forEachDatabase('TEMPLATES_DIR', (kind) => {
  let server: TestServer;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'latchkey-templates-'));
    // Overrides the sign-in page (still using the built-in layout) and the stylesheet; nothing else.
    await writeFile(
      join(dir, 'login.eta'),
      `<% layout('./layout', { ...it, title: 'Acme sign-in' }) %>
<h1>Acme staff sign-in</h1>
<form method="post" action="/login">
  <input type="hidden" name="csrf_token" value="<%= it.csrfToken %>">
  <input type="hidden" name="return_to" value="<%= it.returnTo %>">
  <label for="email">Work email</label><input id="email" name="email" type="email">
  <label for="password">Password</label><input id="password" name="password" type="password">
  <button type="submit">Sign in</button>
</form>`,
    );
    await writeFile(join(dir, 'latchkey.css'), 'body { background: #123456; }\n');
    server = await startServer(kind, { env: { TEMPLATES_DIR: dir } });
    await addResourceServer(server.stores, 'https://mcp.example.com/mcp');
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('renders an overridden template inside the built-in layout, and its forms still work', async () => {
    const email = await addUser(server.stores);
    const browser = new FormBrowser(server.url);
    const page = await browser.request('/login');
    assert.match(page.html, /Acme staff sign-in/);
    assert.match(page.html, /<title>Acme sign-in · Latchkey<\/title>/, 'the built-in layout wraps it');
    const signedInPage = await browser.submit(page, '/login', {
      email,
      password: 'correct horse battery staple',
    });
    assert.match(signedInPage.html, /You are signed in/);
  });

  it('keeps every template the folder does not replace', async () => {
    const client = await addClient(server.stores, { name: 'Default consent' });
    const b = await signedIn(server, await addUser(server.stores));
    const consent = await b.request(authorizeUrl(server, client));
    assert.match(consent.html, /Allow Default consent to access your account\?/);
  });

  it('serves the overridden stylesheet', async () => {
    const res = await fetch(`${server.url}/assets/latchkey.css`);
    assert.equal(await res.text(), 'body { background: #123456; }\n');
  });
});
