// The body of a back-channel OAuth request (/token, /revoke, /introspect): form-encoded (RFC 6749 §3.2), and no
// parameter sent twice (RFC 6749 §3.1).
import type { FastifyRequest } from 'fastify';
import { invalidRequest } from './errors.ts';
import { Params } from './params.ts';

export function readForm(req: FastifyRequest): Params {
  const type = req.headers['content-type'] ?? '';
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    throw invalidRequest('the request body must be application/x-www-form-urlencoded');
  }
  const params = Params.from(req.body);
  const duplicate = params.firstDuplicate();
  if (duplicate) throw invalidRequest(`${duplicate} must not be repeated`);
  return params;
}
