// How the facts Latchkey's code reports map onto the bounded label values of src/metrics/metrics.ts.
import type { SignInFact } from '../signin/method.ts';
import type { SignInResult } from './metrics.ts';

/** A sign-in method's finding as counted: signed in, refused for too many attempts, or failed in any other way. */
export function signInResult(kind: SignInFact['kind']): SignInResult {
  if (kind === 'signed_in') return 'success';
  return kind === 'throttled' ? 'throttled' : 'failure';
}
