// Authorization server metadata (RFC 8414), served at /.well-known/oauth-authorization-server and, because MCP
// clients try both, at /.well-known/openid-configuration. For an issuer with a path (/t1) the documents are
// also served at the path-suffixed locations clients build (RFC 8414 §3.1, OIDC Discovery §4).
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { CLIENT_AUTH_METHODS, SECRET_AUTH_METHODS } from '../oauth/client-auth.ts';
import { grantTypesSupported } from '../oauth/grants/index.ts';

export function authorizationServerMetadata(ctx: AppContext): Record<string, unknown> {
  const { issuer, scopes, allowDynamicRegistration } = ctx.config;
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    ...(allowDynamicRegistration ? { registration_endpoint: `${issuer}/register` } : {}),
    revocation_endpoint: `${issuer}/revoke`,
    introspection_endpoint: `${issuer}/introspect`,
    scopes_supported: scopes,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: grantTypesSupported({ tokenExchange: ctx.upstream.providers.length > 0 }),
    token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    // Resource servers always hold a secret (RFC 7662 §2.1).
    introspection_endpoint_auth_methods_supported: SECRET_AUTH_METHODS,
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
    client_id_metadata_document_supported: true,
  };
}

export function metadataRoutes(app: FastifyInstance, ctx: AppContext): void {
  const doc = authorizationServerMetadata(ctx);
  const path = new URL(ctx.config.issuer).pathname.replace(/\/$/, '');
  const locations = [
    '/.well-known/oauth-authorization-server',
    '/.well-known/openid-configuration',
    ...(path
      ? [
          `/.well-known/oauth-authorization-server${path}`,
          `/.well-known/openid-configuration${path}`,
          `${path}/.well-known/openid-configuration`,
        ]
      : []),
  ];
  for (const url of new Set(locations)) {
    app.get(url, async (_req, reply) => {
      reply.header('cache-control', 'public, max-age=300').header('access-control-allow-origin', '*');
      return doc;
    });
  }
}
