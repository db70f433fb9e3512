// The `upstream` member of /introspect (spec federation §6.1): the identity snapshot of the sign-in behind a token,
// from upstream_logins.claims (the normalized identity of §3.5, stored in this member's shape by the callback:
// claimsSnapshot in flow.ts), for resource servers allowed to see it. No upstream
// call and no token: only who the person is at the provider.
import type { Prisma } from '../generated/prisma/client.ts';

export interface UpstreamMember {
  provider: string;
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  username?: string;
  claims: Record<string, unknown>;
}

/** Declared in /introspect's response schema: Fastify drops what the schema does not name. */
export const UPSTREAM_MEMBER_SCHEMA = {
  type: 'object',
  required: ['provider', 'sub', 'claims'],
  properties: {
    provider: { type: 'string' },
    sub: { type: 'string' },
    email: { type: 'string' },
    email_verified: { type: 'boolean' },
    name: { type: 'string' },
    username: { type: 'string' },
    claims: { type: 'object', additionalProperties: true },
  },
} as const;

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The member for a live login, or undefined (no login, a revoked one, or a snapshot without a subject). */
export function upstreamMember(
  login: { provider: string; claims: Prisma.JsonValue; revokedAt: Date | null } | null,
): UpstreamMember | undefined {
  if (!login || login.revokedAt) return undefined;
  const c = login.claims;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return undefined;
  const sub = text(c.sub);
  if (!sub) return undefined;
  const extra = c.claims;
  const member: UpstreamMember = {
    provider: login.provider,
    sub,
    claims: typeof extra === 'object' && extra !== null && !Array.isArray(extra) ? { ...extra } : {},
  };
  const email = text(c.email);
  if (email) member.email = email;
  if (typeof c.email_verified === 'boolean') member.email_verified = c.email_verified;
  const name = text(c.name);
  if (name) member.name = name;
  const username = text(c.username);
  if (username) member.username = username;
  return member;
}
