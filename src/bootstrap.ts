// Start-up work after migrations: resource servers declared in RESOURCE_SERVERS are created or updated, so a
// docker compose file can wire an MCP server to Latchkey without running the CLI.
import type { Config } from './config.ts';
import { hashSecret } from './lib/crypto.ts';
import { normalizeResource } from './oauth/resources.ts';
import type { Stores } from './store/index.ts';

export async function applyDeclaredResourceServers(stores: Stores, config: Config): Promise<string[]> {
  const applied: string[] = [];
  for (const declared of config.resourceServers) {
    const uri = normalizeResource(declared.uri);
    if (!uri)
      throw new Error(
        `RESOURCE_SERVERS: "${declared.uri}" is not an absolute http(s) URI without a fragment`,
      );
    const existing = await stores.resourceServers.findByClientId(declared.clientId);
    if (existing && existing.uri !== uri) {
      throw new Error(
        `RESOURCE_SERVERS: client_id "${declared.clientId}" already belongs to ${existing.uri}`,
      );
    }
    await stores.resourceServers.upsert({
      uri,
      name: declared.name,
      clientId: declared.clientId,
      secretHash: hashSecret(declared.clientSecret),
      exposeUpstreamClaims: declared.exposeUpstreamClaims,
      upstreamTokenProviders: declared.upstreamTokenProviders,
      requiredUpstreamProvider: declared.requiredUpstreamProvider,
    });
    applied.push(uri);
  }
  return applied;
}
