// The steps of the authorization flow a client takes that the doctor can take without a browser and without
// changing anything: an optional dynamic registration (deleted again), and the /authorize redirects a client meets
// before anyone signs in, which must be 302/303 (a 307/308 repeats a POST at the next URL and broke Claude's flow).
import { randomBytes } from 'node:crypto';
import { calculateS256Challenge } from '../oauth/pkce.ts';
import { type DoctorFetch, request, Unreachable } from './http.ts';
import type { Steps } from './report.ts';

/** A client to probe /authorize with. */
export interface ProbeClient {
  readonly clientId: string;
  readonly redirectUri: string;
  /** Where it came from, for the report. */
  readonly origin: 'registered by --register' | 'already registered';
}

/** The body Claude has been seen sending to a registration endpoint, so the dry run meets what Claude meets. */
const CLAUDE_REGISTRATION = {
  redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
  token_endpoint_auth_method: 'client_secret_post',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  client_name: 'Claude (latchkey doctor dry run)',
};

/** Registers as Claude does; returns the client, which the caller deletes. */
export async function checkRegistration(
  steps: Steps,
  fetchFn: DoctorFetch,
  endpoint: string | undefined,
): Promise<ProbeClient | undefined> {
  if (!endpoint) {
    steps.skip(
      'dcr',
      'no registration_endpoint of this Latchkey advertised (ALLOW_DYNAMIC_REGISTRATION is off): clients use CIMD',
    );
    return undefined;
  }
  const fix =
    'see the server log for the refused registration; check ALLOW_DYNAMIC_REGISTRATION and the proxy';
  try {
    const answer = await request(fetchFn, endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(CLAUDE_REGISTRATION),
    });
    let doc: Record<string, unknown> = {};
    try {
      doc = JSON.parse(answer.body) as Record<string, unknown>;
    } catch {}
    if (answer.status === 401 && /^Bearer/i.test(answer.headers.get('www-authenticate') ?? '')) {
      // RFC 7591 §3: the operator requires an initial access token (REGISTRATION_ACCESS_TOKEN), which Claude does
      // not have: it registers through CIMD instead, so this is a choice, not a fault.
      steps.skip(
        'dcr',
        `POST ${endpoint} requires an initial access token: Claude registers through CIMD instead`,
      );
      return undefined;
    }
    if (answer.status !== 201 || typeof doc.client_id !== 'string' || !Array.isArray(doc.redirect_uris)) {
      steps.fail(
        'dcr',
        `POST ${endpoint} answers ${answer.status}${doc.error ? ` ${String(doc.error)}` : ''}`,
        fix,
      );
      return undefined;
    }
    steps.pass(
      'dcr',
      `POST ${endpoint} registered a client as Claude does (201, ${String(doc.token_endpoint_auth_method)})`,
    );
    return {
      clientId: doc.client_id,
      redirectUri: CLAUDE_REGISTRATION.redirect_uris[0]!,
      origin: 'registered by --register',
    };
  } catch (err) {
    if (!(err instanceof Unreachable)) throw err;
    steps.fail('dcr', err.message, fix);
    return undefined;
  }
}

const GOOD_REDIRECT = new Set([302, 303]);

/** GET /authorize as a client sends it, with no session: first plain, then with prompt=none. */
export async function checkAuthorizeRedirects(
  steps: Steps,
  fetchFn: DoctorFetch,
  endpoint: string | undefined,
  issuer: string,
  /** The registered resource; undefined when it is not registered here (then /authorize would refuse it). */
  resource: string | undefined,
  client: ProbeClient | undefined,
): Promise<void> {
  const ids = ['authorize_redirect', 'authorize_error_redirect'];
  if (!endpoint || !client || !resource) {
    const why = !endpoint
      ? 'no authorization_endpoint of this Latchkey to probe'
      : !resource
        ? 'the resource is not registered here, so /authorize would refuse it'
        : 'no client to probe /authorize with: run with --register, or register a client first';
    for (const id of ids) steps.skip(id, why);
    return;
  }
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: client.clientId,
    redirect_uri: client.redirectUri,
    code_challenge: calculateS256Challenge(randomBytes(32).toString('base64url')),
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('hex'),
    resource,
  });
  const fix = 'answer /authorize redirects with 302 or 303 (a proxy rewriting them to 307/308 breaks Claude)';
  const probe = async (id: string, url: string, expect: (location: URL) => string | undefined) => {
    try {
      const answer = await request(fetchFn, url, { follow: false });
      const location = answer.headers.get('location');
      const target = location && URL.canParse(location, url) ? new URL(location, url) : undefined;
      if (!GOOD_REDIRECT.has(answer.status) || !target) {
        return steps.fail(
          id,
          `GET /authorize for ${client.origin} client ${client.clientId} answers ${answer.status}`,
          fix,
        );
      }
      const problem = expect(target);
      if (problem) return steps.fail(id, problem, fix);
      steps.pass(id, `GET /authorize answers ${answer.status} to ${target.origin}${target.pathname}`);
    } catch (err) {
      if (!(err instanceof Unreachable)) throw err;
      steps.fail(id, err.message, fix);
    }
  };
  await probe('authorize_redirect', `${endpoint}?${query}`, (target) =>
    target.origin === new URL(issuer).origin
      ? undefined
      : `GET /authorize without a session redirects to ${target.origin}, not to Latchkey's own sign-in page`,
  );
  query.set('prompt', 'none');
  const back = new URL(client.redirectUri);
  await probe('authorize_error_redirect', `${endpoint}?${query}`, (target) => {
    if (target.origin !== back.origin || target.pathname !== back.pathname)
      return `GET /authorize?prompt=none redirects to ${target.origin}${target.pathname}, not the client's ${client.redirectUri}`;
    if (target.searchParams.get('iss') !== issuer)
      return `the error redirect carries iss=${JSON.stringify(target.searchParams.get('iss'))}, not ${issuer} (RFC 9207)`;
    return undefined;
  });
}
