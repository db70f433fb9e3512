// latchkey/resource-server: protect an MCP server with Latchkey. Verify bearer tokens through /introspect
// (RFC 7662), bind their audience (RFC 8707), challenge per RFC 6750 §3, and publish RFC 9728 metadata.
export type { KitClock, ReadonlyTokenCache } from './cache.ts';
export {
  expressAuthMiddleware,
  expressMetadataMiddleware,
  type LatchkeyMiddleware,
  type LatchkeyRequest,
  type NextFunction,
  toAuthInfo,
} from './express.ts';
export {
  createFastifyHook,
  type LatchkeyFastifyOptions,
  type LatchkeyHook,
  latchkeyResourceServer,
  registerProtectedResourceMetadata,
} from './fastify.ts';
export {
  type ActiveToken,
  type ClientAuthMethod,
  createIntrospectionVerifier,
  IntrospectionError,
  type IntrospectionResult,
  type IntrospectionVerifier,
  type IntrospectionVerifierOptions,
  parseIntrospectionResponse,
  type TokenVerifier,
  type UpstreamIdentity,
} from './introspection.ts';
export {
  createProtectedResourceMetadata,
  PROTECTED_RESOURCE_WELL_KNOWN,
  type ProtectedResourceMetadata,
  type ProtectedResourceMetadataOptions,
  protectedResourceMetadataPaths,
  protectedResourceMetadataUrl,
} from './metadata.ts';
export {
  type AuthenticationResult,
  type Challenge,
  type ChallengeBody,
  type LatchkeyAuth,
  type ProtectResourceOptions,
  protectResource,
  type ResourceProtection,
} from './protect.ts';
export { audienceIncludes, normalizeResource } from './resource.ts';
export {
  createUpstreamTokenClient,
  type UpstreamToken,
  type UpstreamTokenClient,
  type UpstreamTokenClientOptions,
  UpstreamTokenError,
} from './upstream-token.ts';
