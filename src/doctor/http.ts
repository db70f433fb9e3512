// How the doctor reaches a deployment: one request at a time, with a time limit and a size limit on every answer,
// and redirects never followed blindly. A redirect to the same origin is followed (at most a few times) and
// recorded, so a check can say it happened; a redirect to another origin is not followed, and the check says so.
import { readCapped } from '../lib/read-capped.ts';

export const DOCTOR_TIMEOUT_MS = 10_000;
/** Metadata documents are a few kilobytes; anything much larger is not one. */
export const DOCTOR_MAX_BYTES = 256 * 1024;
const MAX_REDIRECTS = 3;

export interface Redirect {
  readonly method: string;
  readonly from: string;
  readonly status: number;
  readonly to: string;
}

export interface Answer {
  /** The URL that answered (after same-origin redirects). */
  readonly url: string;
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  /** Same-origin redirects followed on the way. */
  readonly redirects: readonly Redirect[];
  /** A redirect to another origin, not followed: `status` and `headers` are that redirect's. */
  readonly crossOrigin?: Redirect;
}

export interface RequestOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Follow same-origin redirects (GET only). Default true for GET, false for POST. */
  follow?: boolean;
}

export type DoctorFetch = typeof fetch;

export class Unreachable extends Error {
  constructor(
    readonly url: string,
    message: string,
  ) {
    super(message);
    this.name = 'Unreachable';
  }
}

async function readBounded(res: Response, url: string): Promise<string> {
  const body = await readCapped(res, DOCTOR_MAX_BYTES);
  if (!body) throw new Unreachable(url, `${url} answered more than ${DOCTOR_MAX_BYTES} bytes`);
  return Buffer.from(body).toString('utf8');
}

/** One request (and its same-origin redirects), bounded in time and size. Throws Unreachable on network errors. */
export async function request(
  fetchFn: DoctorFetch,
  url: string,
  options: RequestOptions = {},
): Promise<Answer> {
  const method = options.method ?? 'GET';
  const follow = options.follow ?? method === 'GET';
  const redirects: Redirect[] = [];
  let current = url;
  for (let hop = 0; ; hop++) {
    let res: Response;
    try {
      res = await fetchFn(current, {
        method,
        headers: options.headers,
        body: options.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(DOCTOR_TIMEOUT_MS),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why =
        (err as Error).name === 'TimeoutError'
          ? `no answer within ${DOCTOR_TIMEOUT_MS / 1000} s`
          : (cause?.code ?? cause?.message ?? (err as Error).message);
      throw new Unreachable(current, `${method} ${current} failed: ${why}`);
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location !== null) {
      const to = URL.canParse(location, current) ? new URL(location, current).href : location;
      const redirect = { method, from: current, status: res.status, to };
      await res.body?.cancel().catch(() => {});
      const sameOrigin = URL.canParse(to) && new URL(to).origin === new URL(current).origin;
      if (!sameOrigin) {
        return {
          url: current,
          status: res.status,
          headers: res.headers,
          body: '',
          redirects,
          crossOrigin: redirect,
        };
      }
      if (follow && hop < MAX_REDIRECTS) {
        redirects.push(redirect);
        current = to;
        continue;
      }
      return { url: current, status: res.status, headers: res.headers, body: '', redirects };
    }
    return {
      url: current,
      status: res.status,
      headers: res.headers,
      body: await readBounded(res, current),
      redirects,
    };
  }
}

/** The body as a JSON object, or a sentence saying why it is not one. */
export function jsonObject(answer: Answer): { doc: Record<string, unknown> } | { problem: string } {
  const type = answer.headers.get('content-type') ?? '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    return { problem: `${answer.url} did not answer JSON (content-type ${type || 'none'})` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    return { problem: `${answer.url} answered JSON that is not an object` };
  return { doc: parsed as Record<string, unknown> };
}
