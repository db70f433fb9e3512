// Authorization server metadata (RFC 8414), served at /.well-known/oauth-authorization-server and, because MCP
// clients try both, at /.well-known/openid-configuration. For an issuer with a path (/t1) the documents are
// also served at the path-suffixed locations clients build (RFC 8414 §3.1, OIDC Discovery §4).
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';

export function authorizationServerMetadata(ctx: AppContext): Record<string, unknown> {
  const { issuer, scopes, allowDynamicRegistration } = ctx.config;
  const authMethods = ['none', 'client_secret_post', 'client_secret_basic'];
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
    grant_types_supported: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_methods_supported: authMethods,
    revocation_endpoint_auth_methods_supported: authMethods,
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
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
