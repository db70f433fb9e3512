// The form POST a resource server makes to Latchkey as a confidential client (/introspect, and /token for the
// upstream token exchange): JSON wanted back, credentials in HTTP Basic or in the body (RFC 6749 §2.3.1).

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post';

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
}

/** The headers and body of a form POST carrying `fields`, authenticated with `credentials` by `method`. */
export function clientFormRequest(
  method: ClientAuthMethod,
  credentials: ClientCredentials,
  fields: Record<string, string>,
): { headers: Record<string, string>; body: URLSearchParams } {
  const body = new URLSearchParams(fields);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  if (method === 'client_secret_basic') {
    // RFC 6749 §2.3.1: each part is form-encoded before Base64.
    const basic = `${formEncode(credentials.clientId)}:${formEncode(credentials.clientSecret)}`;
    headers.authorization = `Basic ${Buffer.from(basic, 'utf8').toString('base64')}`;
  } else {
    body.set('client_id', credentials.clientId);
    body.set('client_secret', credentials.clientSecret);
  }
  return { headers, body };
}

function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}
