// `latchkey doctor`: checks a deployment step by step as Claude and the MCP SDK meet it (README: Check a
// deployment). It reads the database only to see whether the resource is registered here, and changes nothing:
// with `register`, the one client it registers is deleted again before it returns.
import type { ClientKind } from '../generated/prisma/client.ts';
import { isLoopbackHost } from '../oauth/redirect-uri.ts';
import { normalizeResource } from '../resource-server/resource.ts';
import type { Stores } from '../store/index.ts';
import { checkDiscovery, checkMetadataFields } from './authorization-server.ts';
import { checkAuthorizeRedirects, checkRegistration, type ProbeClient } from './flow.ts';
import type { DoctorFetch } from './http.ts';
import { type DoctorReport, Steps } from './report.ts';
import { checkChallenge, checkResourceMetadata } from './resource.ts';

/** More than this between Latchkey's clock and this machine's is reported (tokens carry iat and exp). */
export const MAX_CLOCK_SKEW_SECONDS = 60;

export interface DoctorOptions {
  /** The MCP endpoint as clients are given it. */
  url: string;
  /** This Latchkey's issuer (the ISSUER its server runs with). */
  issuer: string;
  stores: Pick<Stores, 'resourceServers' | 'clients'>;
  /** Do a dry-run dynamic registration (deleted again). */
  register?: boolean;
  fetch?: DoctorFetch;
  now?: () => Date;
}

const PROBE_KINDS: readonly ClientKind[] = ['DYNAMIC', 'OPERATOR'];

async function existingClient(stores: DoctorOptions['stores']): Promise<ProbeClient | undefined> {
  const found = (await stores.clients.list()).find(
    (c) => PROBE_KINDS.includes(c.kind) && c.grantTypes.includes('authorization_code') && c.redirectUris[0],
  );
  return (
    found && { clientId: found.clientId, redirectUri: found.redirectUris[0]!, origin: 'already registered' }
  );
}

function httpsProblem(urls: readonly string[]): string | undefined {
  const plain = [
    ...new Set(
      urls.filter((u) => {
        const url = new URL(u);
        return url.protocol !== 'https:' && !isLoopbackHost(url.hostname);
      }),
    ),
  ];
  return plain.length ? `not https: ${plain.join(', ')}` : undefined;
}

/** Compares the Date of Latchkey's answer with this machine's clock. */
function checkClock(steps: Steps, date: string | undefined, now: Date): void {
  const at = date ? Date.parse(date) : Number.NaN;
  if (Number.isNaN(at)) {
    steps.skip('clock', 'no Date header from the authorization server to compare with');
    return;
  }
  const skew = Math.round((now.getTime() - at) / 1000);
  const seen = `Latchkey's clock and this machine's differ by ${Math.abs(skew)} s`;
  steps.check(
    'clock',
    Math.abs(skew) > MAX_CLOCK_SKEW_SECONDS ? `${seen} (more than ${MAX_CLOCK_SKEW_SECONDS} s)` : undefined,
    seen,
    'synchronise both clocks (NTP)',
  );
}

export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const { url, issuer, stores } = options;
  const fetchFn = options.fetch ?? fetch;
  const steps = new Steps();

  const headerUrl = await checkChallenge(steps, fetchFn, url);
  const prm = await checkResourceMetadata(steps, fetchFn, url, issuer, headerUrl);
  // The authorization server clients will use: this one when the metadata lists it, else the first listed.
  const asIssuer = prm.authorizationServers.includes(issuer)
    ? issuer
    : (prm.authorizationServers[0] ?? issuer);
  const as = await checkDiscovery(steps, fetchFn, asIssuer);
  checkMetadataFields(steps, as.metadata);

  const canonical = normalizeResource(url)!;
  const registered = await stores.resourceServers.findByUri(canonical);
  steps.check(
    'resource_registered',
    registered
      ? undefined
      : `${canonical} is not registered here, so Latchkey refuses tokens for it (invalid_target)`,
    `${canonical} is registered here as "${registered?.name}"`,
    `run \`latchkey resource add ${canonical}\` and give the MCP server the printed credentials`,
  );

  // Probes of the flow go to this Latchkey only: the doctor registers and deletes clients nowhere else.
  const ours = asIssuer === issuer && as.metadata !== undefined;
  const endpoint = (name: string): string | undefined => {
    const value = ours ? as.metadata?.[name] : undefined;
    return typeof value === 'string' &&
      URL.canParse(value) &&
      new URL(value).origin === new URL(issuer).origin
      ? value
      : undefined;
  };
  let probe: ProbeClient | undefined;
  let registeredClient: string | undefined;
  try {
    if (options.register) {
      probe = await checkRegistration(steps, fetchFn, endpoint('registration_endpoint'));
      registeredClient = probe?.clientId;
    }
    probe ??= ours ? await existingClient(stores) : undefined;
    await checkAuthorizeRedirects(
      steps,
      fetchFn,
      endpoint('authorization_endpoint'),
      issuer,
      registered ? canonical : undefined,
      probe,
    );
  } finally {
    if (registeredClient) await stores.clients.delete(registeredClient);
  }

  const urls = [url, ...(headerUrl ? [headerUrl] : []), ...prm.urls, ...as.urls];
  steps.check(
    'https',
    httpsProblem(urls),
    'every URL is https (or http on a loopback address)',
    'serve the MCP server and Latchkey over https (behind a TLS-terminating proxy: TRUST_PROXY and an https ISSUER)',
  );
  checkClock(steps, as.date, (options.now ?? (() => new Date()))());

  const ok = steps.list.every((s) => s.status !== 'fail');
  return { url, issuer, ok, steps: steps.list };
}
