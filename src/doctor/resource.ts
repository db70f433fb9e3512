// The MCP server's side, as a client first meets it: the endpoint's 401 and its challenge (RFC 6750 §3 with
// RFC 9728 §5.1 `resource_metadata`), and the protected resource metadata at the locations clients look for it
// (the header's URL, the path-suffixed and the root well-known URLs, RFC 9728 §3.1).
import { normalizeResource } from '../resource-server/resource.ts';
import { type Answer, type DoctorFetch, jsonObject, request, Unreachable } from './http.ts';
import type { Steps } from './report.ts';

const PRM_WELL_KNOWN = '/.well-known/oauth-protected-resource';

/** What an MCP client sends first: an `initialize` request, without a token. */
const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 'latchkey-doctor', version: '1' },
  },
});

/** The parameters of the Bearer challenge in a WWW-Authenticate header, or undefined without one. */
export function bearerChallenge(header: string | null): Record<string, string> | undefined {
  if (!header) return undefined;
  const at = header.search(/(^|[\s,])Bearer(\s|$)/i);
  if (at === -1) return undefined;
  const rest = header.slice(at).replace(/^[\s,]*Bearer/i, '');
  const params: Record<string, string> = {};
  const re = /\s*,?\s*([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^\s,]+)/y;
  for (let m = re.exec(rest); m; m = re.exec(rest)) {
    params[m[1]!.toLowerCase()] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2]!;
  }
  return params;
}

export function crossOriginProblem(answer: Answer): string | undefined {
  const r = answer.crossOrigin;
  return (
    r &&
    `${r.method} ${r.from} redirects (${r.status}) to another host, ${r.to}; the doctor did not follow it`
  );
}

/** Checks the endpoint's answer to a request without a token; returns the absolute resource_metadata URL. */
export async function checkChallenge(
  steps: Steps,
  fetchFn: DoctorFetch,
  url: string,
): Promise<string | undefined> {
  let answer: Answer;
  try {
    answer = await request(fetchFn, url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: INITIALIZE,
    });
  } catch (err) {
    if (!(err instanceof Unreachable)) throw err;
    steps.fail(
      'mcp_challenge',
      err.message,
      'start the MCP server, or check the URL and that this machine reaches it',
    );
    steps.skip('resource_metadata_url', 'the MCP endpoint did not answer');
    return undefined;
  }
  const challenge = bearerChallenge(answer.headers.get('www-authenticate'));
  const redirected = crossOriginProblem(answer);
  if (redirected || (answer.status >= 300 && answer.status < 400)) {
    steps.fail(
      'mcp_challenge',
      redirected ?? `POST ${url} answers ${answer.status} (a redirect)`,
      'give clients the final URL of the MCP endpoint: Claude does not follow redirects on it',
    );
  } else if (answer.status !== 401 || !challenge) {
    steps.fail(
      'mcp_challenge',
      `POST ${url} without a token answers ${answer.status}${answer.status === 401 ? ' without a Bearer challenge' : ''}`,
      'require a token on the MCP endpoint: answer 401 with `WWW-Authenticate: Bearer resource_metadata="…"` (the resource-server kit does)',
    );
  } else {
    steps.pass('mcp_challenge', `POST ${url} without a token answers 401 with a Bearer challenge`);
  }
  const value = challenge?.resource_metadata;
  if (value === undefined) {
    steps.fail(
      'resource_metadata_url',
      'the challenge has no resource_metadata parameter',
      'add resource_metadata="<absolute URL of the protected resource metadata>" to the WWW-Authenticate header',
    );
    return undefined;
  }
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) {
    steps.fail(
      'resource_metadata_url',
      `resource_metadata is "${value}", not an absolute http(s) URL`,
      `make it absolute, e.g. ${new URL(url).origin}${PRM_WELL_KNOWN}${pathOf(url)}`,
    );
    return undefined;
  }
  steps.pass('resource_metadata_url', `resource_metadata is ${value}`);
  return value;
}

function pathOf(url: string): string {
  const { pathname } = new URL(url);
  return pathname === '/' ? '' : pathname;
}

/** The well-known URLs clients try: the path-suffixed one (when the URL has a path), then the root one. */
export function metadataLocations(url: string): { id: string; url: string }[] {
  const origin = new URL(url).origin;
  const path = pathOf(url);
  return [
    ...(path ? [{ id: 'prm_path_suffixed', url: `${origin}${PRM_WELL_KNOWN}${path}` }] : []),
    { id: 'prm_root', url: `${origin}${PRM_WELL_KNOWN}` },
  ];
}

export interface ResourceMetadataFound {
  /** The authorization_servers of every document that answered, in order. */
  readonly authorizationServers: string[];
  /** Every URL met, for the https check. */
  readonly urls: string[];
}

/** Fetches and checks one protected resource metadata document. */
async function checkDocument(
  steps: Steps,
  fetchFn: DoctorFetch,
  id: string,
  location: string,
  url: string,
  issuer: string,
  found: ResourceMetadataFound,
): Promise<void> {
  const fix = `serve ${location} with {"resource": "${url}", "authorization_servers": ["${issuer}"]} (the resource-server kit's metadata middleware does)`;
  let answer: Answer;
  try {
    answer = await request(fetchFn, location);
  } catch (err) {
    if (!(err instanceof Unreachable)) throw err;
    steps.fail(id, err.message, fix);
    return;
  }
  found.urls.push(location);
  const redirected = crossOriginProblem(answer);
  if (redirected) return steps.fail(id, redirected, fix);
  if (answer.status !== 200) return steps.fail(id, `GET ${location} answers ${answer.status}`, fix);
  const parsed = jsonObject(answer);
  if ('problem' in parsed) return steps.fail(id, parsed.problem, fix);
  const { resource, authorization_servers: servers } = parsed.doc;
  if (typeof resource !== 'string' || normalizeResource(resource) !== normalizeResource(url)) {
    return steps.fail(id, `${location} names the resource ${JSON.stringify(resource)}, not ${url}`, fix);
  }
  if (!Array.isArray(servers) || servers.length === 0 || !servers.every((s) => typeof s === 'string')) {
    return steps.fail(id, `${location} lists no authorization_servers`, fix);
  }
  const usable = (servers as string[]).filter((s) => URL.canParse(s));
  found.authorizationServers.push(...usable);
  found.urls.push(...usable);
  if (!servers.includes(issuer)) {
    return steps.fail(
      id,
      `${location} names the authorization server ${servers.join(', ')}, not this Latchkey (${issuer})`,
      `list "${issuer}" (exactly, the ISSUER Latchkey runs with) in authorization_servers`,
    );
  }
  steps.pass(id, `GET ${location}: resource ${resource}, authorization server ${issuer}`);
}

/** Checks the metadata at the header's URL (when it is another one) and at the well-known URLs. */
export async function checkResourceMetadata(
  steps: Steps,
  fetchFn: DoctorFetch,
  url: string,
  issuer: string,
  headerUrl: string | undefined,
): Promise<ResourceMetadataFound> {
  const found: ResourceMetadataFound = { authorizationServers: [], urls: [] };
  const locations = metadataLocations(url);
  if (headerUrl && !locations.some((l) => l.url === headerUrl))
    locations.unshift({ id: 'prm_header', url: headerUrl });
  for (const l of locations) await checkDocument(steps, fetchFn, l.id, l.url, url, issuer, found);
  return found;
}
