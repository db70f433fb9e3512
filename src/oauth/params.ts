// Reads OAuth parameters from a query string or form body. RFC 6749 §3.1/§3.2: parameters sent without a value
// are treated as omitted, and request parameters must not be included more than once.
import { invalidRequest } from './errors.ts';

export type RawParams = Record<string, string | string[] | undefined>;

export class Params {
  constructor(private readonly raw: RawParams) {}

  static from(value: unknown): Params {
    if (value === null || value === undefined) return new Params({});
    if (typeof value !== 'object') throw invalidRequest('request body must be form-encoded');
    return new Params(value as RawParams);
  }

  /** A single-valued parameter; undefined when absent or empty; invalid_request when repeated. */
  get(name: string): string | undefined {
    const v = this.raw[name];
    if (Array.isArray(v)) {
      if (v.length > 1) throw invalidRequest(`${name} must not be repeated`);
      return v[0] === '' ? undefined : v[0];
    }
    return v === '' || v === undefined ? undefined : v;
  }

  require(name: string): string {
    const v = this.get(name);
    if (v === undefined) throw invalidRequest(`${name} is required`);
    return v;
  }

  /** All values of a parameter that may repeat (RFC 8707 resource). */
  all(name: string): string[] {
    const v = this.raw[name];
    if (v === undefined) return [];
    return (Array.isArray(v) ? v : [v]).filter((x) => x !== '');
  }

  /** The first repeated parameter, if any (checked before anything else is read). */
  firstDuplicate(allowRepeat: readonly string[] = []): string | undefined {
    for (const [k, v] of Object.entries(this.raw)) {
      if (Array.isArray(v) && v.length > 1 && !allowRepeat.includes(k)) return k;
    }
    return undefined;
  }

  toRecord(): RawParams {
    return this.raw;
  }
}
