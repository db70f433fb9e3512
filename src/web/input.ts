// What each route accepts, declared as Fastify schemas, and the one place that turns a request outside it into the
// route kind's standard answer: `invalid_request` on the OAuth API (RFC 6749 §5.2), `invalid_client_metadata` at
// /register (RFC 7591 §3.2.2), the error page on Latchkey's own pages. A refused request reaches no handler, so it
// changes nothing. Every parameter is a single string (RFC 6749 §3.1: never repeated) of bounded length, without
// control characters (none is meaningful in any OAuth parameter, and PostgreSQL cannot store a NUL).
import type { FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import type { AppContext } from '../context.ts';
import { invalidClientMetadata, invalidRequest } from '../oauth/errors.ts';
import { renderPage } from './views.ts';

export type RouteKind = 'api' | 'registration' | 'page';

/** Text without C0 controls or DEL. */
export const NO_CONTROLS = '^[^\\u0000-\\u001F\\u007F]*$';
/** The longest value of a parameter unless its route says otherwise. */
export const MAX_PARAM = 4096;

type JsonSchema = Record<string, unknown>;

/** One parameter: a single string, at most `maxLength` characters, no control characters unless `controls`. */
export function text(maxLength = MAX_PARAM, options: { controls?: 'nul-only' } = {}): JsonSchema {
  return {
    type: 'string',
    maxLength,
    pattern: options.controls === 'nul-only' ? '^[^\\u0000]*$' : NO_CONTROLS,
  };
}

/**
 * Anything else a form or query may carry: unknown parameters are ignored (RFC 6749 §3.1), but bounded. No `type`
 * keyword, so Ajv coerces nothing: `maxLength` applies only to strings, `maxItems` and `items` only to arrays.
 */
export const BOUNDED: JsonSchema = { maxLength: MAX_PARAM, maxItems: 20, items: { maxLength: MAX_PARAM } };

/** A form body or query string: the named parameters, and `rest` for any other (default: single text). */
export function params(named: Record<string, JsonSchema>, rest: JsonSchema = text()): JsonSchema {
  return { type: 'object', maxProperties: 64, properties: named, additionalProperties: rest };
}

/**
 * A JSON document whose every string anywhere is bounded text, every array and object bounded. Again no `type`
 * below the top, so nothing is coerced; which member must be which type is the route's own check.
 */
export function jsonDocument(maxString = MAX_PARAM): JsonSchema {
  return {
    type: 'object',
    $defs: {
      value: {
        maxLength: maxString,
        pattern: NO_CONTROLS,
        maxItems: 64,
        items: { $ref: '#/$defs/value' },
        maxProperties: 64,
        propertyNames: { maxLength: 256, pattern: NO_CONTROLS },
        additionalProperties: { $ref: '#/$defs/value' },
      },
    },
    maxProperties: 64,
    propertyNames: { maxLength: 256, pattern: NO_CONTROLS },
    additionalProperties: { $ref: '#/$defs/value' },
  };
}

const FORM = 'application/x-www-form-urlencoded';
const JSON_TYPE = 'application/json';

export interface InputSpec {
  querystring?: JsonSchema;
  body?: JsonSchema;
  /** The error page's heading (pages only). */
  heading?: string;
}

/** Route options declaring what the route accepts: its schemas, its body's content type, and the refusal. */
export function routeInput(ctx: AppContext, kind: RouteKind, spec: InputSpec) {
  const contentType = kind === 'registration' ? JSON_TYPE : FORM;
  const { heading = 'This request is not valid', ...schemas } = spec;
  const schema = schemas as FastifySchema;
  const wrongType = (req: FastifyRequest): string | undefined => {
    if (!spec.body) return undefined;
    const header = req.headers['content-type'];
    if (header === contentType) return undefined; // the usual case, without splitting
    const type = (header ?? '').split(';')[0]!.trim().toLowerCase();
    return type === contentType ? undefined : `the request body must be ${contentType}`;
  };

  if (kind !== 'page') {
    // The API: the refusal is an OAuthError for the error handler. No async hook, as /introspect is a hot path.
    const refusal = kind === 'api' ? invalidRequest : invalidClientMetadata;
    return {
      schema,
      schemaErrorFormatter: (errors: ValidationIssue[], dataVar: string) =>
        refusal(describe({ validation: errors, validationContext: dataVar })),
      // Before validation, so a body of another type is named as such rather than by its first odd member.
      preValidation: (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
        const problem = wrongType(req);
        done(problem === undefined ? undefined : refusal(problem));
      },
    };
  }

  // A page renders the error page itself (and the hook chain ends there).
  const refuse = async (req: FastifyRequest, reply: FastifyReply, description: string) => {
    req.log.info({ reason: description }, 'request refused: malformed input');
    const data = { heading, message: description, code: 'invalid_request' };
    await renderPage(ctx, reply, 'error', data, { status: 400 });
    return reply;
  };
  return {
    schema,
    attachValidation: true,
    // Before the body is read: a body of the wrong type is never parsed.
    onRequest: async (req: FastifyRequest, reply: FastifyReply) => {
      const problem = wrongType(req);
      if (problem !== undefined) return refuse(req, reply, problem);
    },
    preHandler: async (req: FastifyRequest, reply: FastifyReply) => {
      const failure = req.validationError as ValidationFailure | undefined;
      if (failure) return refuse(req, reply, describe(failure));
    },
  };
}

interface ValidationIssue {
  instancePath: string;
  keyword: string;
}

interface ValidationFailure {
  validation?: ValidationIssue[];
  validationContext?: string;
}

/** A short lowercase description naming the parameter (never its value). */
export function describe(failure: ValidationFailure): string {
  const first = failure.validation?.[0];
  if (!first) return 'the request could not be read';
  const path = first.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const name = path === '' ? (failure.validationContext ?? 'the request') : path.replace(/~1/g, '/');
  switch (first.keyword) {
    case 'type':
      // A form or query value of the wrong type is a list: the parameter was sent more than once.
      // (A form is always an object: only a JSON body can be something else.)
      return path === '' ? 'the request body must be a JSON object' : `${name} must not be repeated`;
    case 'pattern':
      return `${name} must not contain control characters`;
    case 'maxLength':
      return `${name} is too long`;
    case 'maxItems':
    case 'maxProperties':
      return `${name} has too many values`;
    case 'propertyNames':
      return `a member name in ${name === 'body' ? 'the request' : name} is not valid`;
    default:
      return `${name} is not valid`;
  }
}
