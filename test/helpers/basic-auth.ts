// HTTP Basic client credentials as a real OAuth client sends them (RFC 6749 §2.3.1): the client id and secret are
// each form-urlencoded (application/x-www-form-urlencoded, Appendix B) before they are joined by ":" and base64-encoded
// (RFC 7617 §2).

/** The form-urlencoding of RFC 6749 Appendix B: URLSearchParams's, which writes a space as "+". */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice('v='.length);
}

/** The base64 credentials of a Basic header, without the "Basic " scheme. */
export function basicCredentials(id: string, secret: string): string {
  return Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64');
}

/** The value of an Authorization header: `Basic <credentials>`. */
export function basicAuth(id: string, secret: string): string {
  return `Basic ${basicCredentials(id, secret)}`;
}
