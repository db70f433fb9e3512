// Scope parsing and checks (RFC 6749 §3.3): space-delimited, case-sensitive, order-free.
import { shorten } from '../lib/text.ts';
import { invalidScope } from './errors.ts';

export function parseScope(scope: string | undefined): string[] {
  if (scope === undefined) return [];
  return [...new Set(scope.split(' ').filter(Boolean))];
}

export function formatScope(scopes: readonly string[]): string {
  return scopes.join(' ');
}

/**
 * The scopes to grant for a request: the requested ones, all of which must be supported, or, when none are
 * requested, every supported scope (Claude asks for every advertised scope when the resource names none).
 */
export function resolveRequestedScopes(
  requested: string | undefined,
  supported: readonly string[],
): string[] {
  const asked = parseScope(requested);
  if (asked.length === 0) return [...supported];
  const unknown = asked.filter((s) => !supported.includes(s));
  if (unknown.length > 0) throw invalidScope(`unsupported scope: ${shorten(unknown.join(' '))}`);
  // Keep the server's order so equal sets compare and display the same way.
  return supported.filter((s) => asked.includes(s));
}

export function isSubset(subset: readonly string[], of: readonly string[]): boolean {
  return subset.every((s) => of.includes(s));
}
