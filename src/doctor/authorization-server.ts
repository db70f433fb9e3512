// The authorization server's metadata as MCP clients discover it: RFC 8414 and OpenID Connect discovery, at the
// well-known URLs the MCP SDK builds from the issuer (the path-inserted forms for an issuer with a path), each
// naming exactly that issuer (clients compare strings); then what Claude and the SDK need in it.
import { type Answer, type DoctorFetch, jsonObject, request, Unreachable } from './http.ts';
import type { Steps } from './report.ts';
import { crossOriginProblem } from './resource.ts';

/** The discovery URLs the MCP SDK tries for an issuer, in its order. */
export function discoveryLocations(issuer: string): { id: string; url: string }[] {
  const { origin, pathname } = new URL(issuer);
  const path = pathname.replace(/\/$/, '');
  if (!path) {
    return [
      { id: 'as_metadata_oauth', url: `${origin}/.well-known/oauth-authorization-server` },
      { id: 'as_metadata_openid', url: `${origin}/.well-known/openid-configuration` },
    ];
  }
  return [
    { id: 'as_metadata_oauth', url: `${origin}/.well-known/oauth-authorization-server${path}` },
    { id: 'as_metadata_openid', url: `${origin}/.well-known/openid-configuration${path}` },
    { id: 'as_metadata_openid_suffixed', url: `${origin}${path}/.well-known/openid-configuration` },
  ];
}

export interface AuthorizationServerFound {
  /** The first document that answered with the right issuer. */
  readonly metadata: Record<string, unknown> | undefined;
  /** Every URL met or named, for the https check. */
  readonly urls: string[];
  /** The Date header of the first answer, for the clock check. */
  readonly date: string | undefined;
}

const ENDPOINTS = [
  'authorization_endpoint',
  'token_endpoint',
  'registration_endpoint',
  'revocation_endpoint',
];

export async function checkDiscovery(
  steps: Steps,
  fetchFn: DoctorFetch,
  issuer: string,
): Promise<AuthorizationServerFound> {
  let metadata: Record<string, unknown> | undefined;
  let date: string | undefined;
  const urls: string[] = [issuer];
  for (const { id, url } of discoveryLocations(issuer)) {
    const fix = `serve the metadata of ${issuer} at ${url}, with "issuer": "${issuer}" (Latchkey does when its ISSUER is ${issuer} and the proxy passes /.well-known/ through)`;
    let answer: Answer;
    try {
      answer = await request(fetchFn, url);
    } catch (err) {
      if (!(err instanceof Unreachable)) throw err;
      steps.fail(id, err.message, fix);
      continue;
    }
    urls.push(url);
    date ??= answer.headers.get('date') ?? undefined;
    const redirected = crossOriginProblem(answer);
    if (redirected) {
      steps.fail(id, redirected, fix);
      continue;
    }
    if (answer.status !== 200) {
      steps.fail(id, `GET ${url} answers ${answer.status}`, fix);
      continue;
    }
    const parsed = jsonObject(answer);
    if ('problem' in parsed) {
      steps.fail(id, parsed.problem, fix);
      continue;
    }
    const named = parsed.doc.issuer;
    if (named !== issuer) {
      steps.fail(
        id,
        `${url} names the issuer ${JSON.stringify(named)}, not ${issuer}; clients refuse metadata whose issuer differs`,
        `make every discovery document name "${issuer}" exactly (one ISSUER, no trailing slash differences)`,
      );
      continue;
    }
    steps.pass(id, `GET ${url}: issuer ${issuer}`);
    if (!metadata) {
      metadata = parsed.doc;
      for (const name of ENDPOINTS) {
        const v = metadata[name];
        if (typeof v === 'string' && URL.canParse(v)) urls.push(v);
      }
    }
  }
  return { metadata, urls, date };
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** What Claude and the MCP SDK need in the metadata. */
export function checkMetadataFields(steps: Steps, metadata: Record<string, unknown> | undefined): void {
  const ids = ['pkce_s256', 'cimd_none', 'registration', 'iss_parameter'];
  if (!metadata) {
    for (const id of ids) steps.skip(id, 'no authorization server metadata with the right issuer');
    return;
  }
  const methods = list(metadata.code_challenge_methods_supported);
  steps.check(
    'pkce_s256',
    methods.includes('S256')
      ? undefined
      : `code_challenge_methods_supported is ${JSON.stringify(metadata.code_challenge_methods_supported)}; MCP clients refuse an authorization server without S256`,
    'code_challenge_methods_supported includes S256',
    'advertise "code_challenge_methods_supported": ["S256"]',
  );
  const cimd = metadata.client_id_metadata_document_supported === true;
  const auth = list(metadata.token_endpoint_auth_methods_supported);
  steps.check(
    'cimd_none',
    !cimd || auth.includes('none')
      ? undefined
      : `client_id_metadata_document_supported is true but token_endpoint_auth_methods_supported (${auth.join(', ')}) lacks "none"; Claude then does not use CIMD`,
    cimd
      ? 'client ID metadata documents advertised, with "none" among the token endpoint auth methods'
      : 'client ID metadata documents not advertised',
    'add "none" to token_endpoint_auth_methods_supported (CIMD clients are public clients)',
  );
  const dcr = typeof metadata.registration_endpoint === 'string';
  steps.check(
    'registration',
    cimd || dcr ? undefined : 'neither client_id_metadata_document_supported nor a registration_endpoint',
    `clients can register: ${[cimd && 'client ID metadata documents', dcr && 'dynamic registration'].filter(Boolean).join(' and ')}`,
    'advertise client_id_metadata_document_supported (Latchkey does) or allow dynamic registration',
  );
  steps.check(
    'iss_parameter',
    metadata.authorization_response_iss_parameter_supported === true
      ? undefined
      : 'authorization_response_iss_parameter_supported is not true (RFC 9207)',
    'authorization_response_iss_parameter_supported is true (RFC 9207)',
    'send iss on authorization responses and advertise "authorization_response_iss_parameter_supported": true',
  );
}
