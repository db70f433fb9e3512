// A small cookie-keeping HTTP client that signs in and approves on Latchkey's pages by submitting the same forms
// a person would. Redirects are followed while they stay on the issuer or on an origin the test allowed with
// `follow` (an upstream identity provider, say); the first redirect elsewhere (the client's redirect URI) is
// returned instead of followed. Cookies are kept in one jar per origin, as a browser keeps them per site.
export interface FormField {
  name: string;
  value: string;
}

export interface ParsedForm {
  action: string;
  method: string;
  fields: FormField[];
  buttons: FormField[];
}

function decodeEntities(s: string): string {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return m ? decodeEntities(m[1]!) : undefined;
}

export function parseForms(html: string): ParsedForm[] {
  const forms: ParsedForm[] = [];
  for (const m of html.matchAll(/<form([^>]*)>([\s\S]*?)<\/form>/g)) {
    const fields: FormField[] = [];
    const buttons: FormField[] = [];
    for (const input of m[2]!.matchAll(/<input([^>]*)>/g)) {
      const name = attr(input[1]!, 'name');
      if (name) fields.push({ name, value: attr(input[1]!, 'value') ?? '' });
    }
    for (const b of m[2]!.matchAll(/<button([^>]*)>/g)) {
      const name = attr(b[1]!, 'name');
      if (name) buttons.push({ name, value: attr(b[1]!, 'value') ?? '' });
    }
    forms.push({
      action: attr(m[1]!, 'action') ?? '',
      method: attr(m[1]!, 'method') ?? 'get',
      fields,
      buttons,
    });
  }
  return forms;
}

export interface PageResult {
  status: number;
  url: string;
  html: string;
  headers: Headers;
  /** Set when the server redirected away from the issuer (to the client). */
  redirectedTo?: string;
}

export class FormBrowser {
  /** One cookie jar per origin (scheme://host:port); paths and attributes other than expiry are ignored. */
  readonly jars = new Map<string, Map<string, string>>();
  /** Origins besides the issuer whose redirects are followed. */
  private readonly followed = new Set<string>();

  constructor(
    readonly issuer: string,
    options: { follow?: readonly string[] } = {},
  ) {
    for (const origin of options.follow ?? []) this.follow(origin);
  }

  /** The issuer's cookies (what most tests look at). */
  get cookies(): Map<string, string> {
    return this.jar(this.issuer);
  }

  /** The cookie jar of the origin of `url`, created empty on first use. */
  jar(url: string): Map<string, string> {
    const origin = new URL(url).origin;
    let jar = this.jars.get(origin);
    if (!jar) {
      jar = new Map();
      this.jars.set(origin, jar);
    }
    return jar;
  }

  /** Follows redirects to the origin of `url` too (an upstream provider's pages). */
  follow(url: string): this {
    this.followed.add(new URL(url).origin);
    return this;
  }

  private follows(url: string): boolean {
    const origin = new URL(url).origin;
    return origin === new URL(this.issuer).origin || this.followed.has(origin);
  }

  private cookieHeader(url: string): string {
    return [...this.jar(url)].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private keepCookies(url: string, headers: Headers): void {
    const jar = this.jar(url);
    for (const c of headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(c) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }

  /**
   * Requests `url` (relative to the issuer) and follows redirects on followed origins, GET after the first hop.
   * The answer of the last request followed is returned; `redirectedTo` is set when it sent the browser elsewhere.
   */
  async request(url: string, init: { method?: string; body?: URLSearchParams } = {}): Promise<PageResult> {
    let current = new URL(url, this.issuer).href;
    let method = init.method ?? 'GET';
    let body: URLSearchParams | undefined = init.body;
    for (let hops = 0; hops < 20; hops++) {
      const cookie = this.cookieHeader(current);
      const res = await fetch(current, {
        method,
        redirect: 'manual',
        headers: {
          ...(cookie ? { cookie } : {}),
          ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
        body,
      });
      this.keepCookies(current, res.headers);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        const next = new URL(location, current).href;
        await res.arrayBuffer();
        if (!this.follows(next)) {
          return { status: res.status, url: current, html: '', headers: res.headers, redirectedTo: next };
        }
        current = next;
        method = 'GET';
        body = undefined;
        continue;
      }
      return { status: res.status, url: current, html: await res.text(), headers: res.headers };
    }
    throw new Error('too many redirects');
  }

  /** Submits the page's form whose action is `action`, with `values` filled in and `button` pressed. */
  async submit(
    page: PageResult,
    action: string,
    values: Record<string, string> = {},
    button?: FormField,
  ): Promise<PageResult> {
    const form = parseForms(page.html).find((f) => f.action === action);
    if (!form) throw new Error(`no form with action ${action} on ${page.url} (status ${page.status})`);
    const body = new URLSearchParams();
    for (const f of form.fields) body.append(f.name, values[f.name] ?? f.value);
    for (const [k, v] of Object.entries(values))
      if (!form.fields.some((f) => f.name === k)) body.append(k, v);
    if (button) body.append(button.name, button.value);
    // A relative action is relative to the page it is on (which may be another origin's page).
    return this.request(new URL(form.action, page.url).href, { method: form.method.toUpperCase(), body });
  }

  /**
   * Follows an authorization URL as a person would: signs in when asked (with a password, or by pressing an upstream
   * provider's button, the provider's pages approving at once), approves (or denies) when asked. Returns the URL the
   * server finally sent the browser to (the client's redirect URI).
   */
  async authorize(
    authorizationUrl: string,
    credentials: { email: string; password: string } | { upstream: string },
    decision: 'approve' | 'deny' = 'approve',
  ): Promise<URL> {
    let page = await this.request(authorizationUrl);
    for (let step = 0; step < 4 && !page.redirectedTo; step++) {
      const actions = parseForms(page.html).map((f) => f.action);
      if ('upstream' in credentials && actions.includes(`/login/upstream/${credentials.upstream}`)) {
        page = await this.submit(page, `/login/upstream/${credentials.upstream}`);
      } else if ('password' in credentials && actions.includes('/login')) {
        page = await this.submit(page, '/login', {
          email: credentials.email,
          password: credentials.password,
        });
      } else if (actions.includes('/authorize')) {
        page = await this.submit(page, '/authorize', {}, { name: 'decision', value: decision });
      } else {
        throw new Error(`unexpected page ${page.url} (${page.status}): ${page.html.slice(0, 500)}`);
      }
    }
    if (!page.redirectedTo) throw new Error('the authorization did not return to the client');
    return new URL(page.redirectedTo);
  }
}
