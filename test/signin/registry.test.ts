// The list of sign-in methods is checked when the app is built: ids are URL-safe and unique, and POST /login
// (which names no method) has at most one form to finish.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import {
  type FormSignInMethod,
  type RedirectSignInMethod,
  type SignInMethod,
  signInMethods,
} from '../../src/signin/index.ts';

const form = (id: string): FormSignInMethod => ({
  id,
  kind: 'form',
  label: id,
  template: 'signin-password',
  formValues: () => ({}),
  finish: async () => ({ kind: 'invalid' }),
});

const redirect = (id: string, targets: string[] = []): RedirectSignInMethod => ({
  id,
  kind: 'redirect',
  label: id,
  buttonLabel: `Sign in with ${id}`,
  formTargets: () => targets,
  begin: async () => ({ kind: 'unavailable' }),
  finish: async () => ({ kind: 'invalid' }),
});

it('indexes the methods in page order: the form, the redirect methods by id, their CSP targets once each', () => {
  const methods = signInMethods([
    redirect('plane', ['https://api.plane.so']),
    form('password'),
    redirect('github', ['https://github.com', 'https://api.plane.so']),
  ]);
  assert.deepEqual(
    methods.all.map((m) => m.id),
    ['plane', 'password', 'github'],
  );
  assert.equal(methods.form?.id, 'password');
  assert.deepEqual(
    methods.redirects.map((m) => m.id),
    ['plane', 'github'],
  );
  assert.equal(methods.redirect('github')?.buttonLabel, 'Sign in with github');
  assert.equal(methods.redirect('password'), undefined, 'a form is not begun by redirect');
  assert.deepEqual(methods.formTargets(), ['https://api.plane.so', 'https://github.com']);
});

it('allows no method at all to be a form', () => {
  assert.equal(signInMethods([redirect('google')]).form, undefined);
});

it('refuses a bad list at start, naming the problem', () => {
  const cases: [SignInMethod[], RegExp][] = [
    [[form('password'), redirect('password')], /"password" is used twice/],
    [[redirect('Plane')], /"Plane" must match/],
    [[redirect('a/b')], /"a\/b" must match/],
    [[redirect('x'.repeat(33))], /must match/],
    [[form('password'), form('pin')], /only one form sign-in method/],
  ];
  for (const [list, message] of cases) assert.throws(() => signInMethods(list), message);
});
