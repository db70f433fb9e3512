// The example's upstream tool: what FastMCP's Plane provider gives its tools, done the Latchkey way. The person
// signed in at Plane through Latchkey; the MCP client holds only a Latchkey token; this server exchanges that token
// at Latchkey's /token (RFC 8693) for the person's current Plane access token and calls the Plane API with it.
// Latchkey refreshes the Plane token when it has expired. Registered only when PLANE_API_URL is set.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  type UpstreamIdentity,
  type UpstreamTokenClient,
  UpstreamTokenError,
} from '../../src/resource-server/index.ts';

export interface PlaneToolOptions {
  /** Plane's API base URL as this server reaches it, e.g. `https://api.plane.so`. */
  apiUrl: string;
  /** The provider id of Plane in Latchkey's UPSTREAM_PROVIDERS. Default `plane`. */
  provider?: string;
  tokens: UpstreamTokenClient;
  fetch?: typeof fetch;
}

const failure = (text: string): CallToolResult => ({ isError: true, content: [{ type: 'text', text }] });

/** Why the token exchange failed, for the person (never a token). */
function exchangeFailure(err: unknown): CallToolResult {
  if (!(err instanceof UpstreamTokenError)) return failure('Latchkey could not be reached; try again.');
  switch (err.error) {
    case 'invalid_grant':
      return failure('Your Plane sign-in has ended. Connect this server again to sign in with Plane.');
    case 'unauthorized_client':
      return failure(
        'This server is not allowed your Plane token (latchkey resource update --upstream-token).',
      );
    case 'temporarily_unavailable':
      return failure(`Plane is not responding; try again in ${err.retryAfter ?? 5} seconds.`);
    default:
      return failure(`Latchkey refused the token exchange (${err.error}).`);
  }
}

export function registerPlaneTools(server: McpServer, options: PlaneToolOptions): void {
  const apiUrl = options.apiUrl.replace(/\/+$/, '');
  const provider = options.provider ?? 'plane';
  const doFetch = options.fetch ?? fetch;
  server.registerTool(
    'plane_me',
    {
      title: 'My Plane account',
      description:
        'Asks Plane who you are, with your own Plane access token, and names the workspace you signed in to.',
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async (extra) => {
      const auth = extra.authInfo;
      if (!auth) return failure('No Latchkey token came with this request.');
      let accessToken: string;
      try {
        accessToken = (await options.tokens.get(auth.token, { audience: provider })).accessToken;
      } catch (err) {
        return exchangeFailure(err);
      }
      let res: Response;
      try {
        res = await doFetch(`${apiUrl}/api/v1/users/me/`, {
          headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
          redirect: 'error',
          signal: AbortSignal.timeout(10_000),
        });
      } catch {
        return failure('Plane could not be reached; try again.');
      }
      if (!res.ok) {
        await res.body?.cancel();
        return failure(`Plane answered ${res.status}.`);
      }
      const me = (await res.json()) as Record<string, unknown>;
      // The identity Latchkey gave with the token (upstream_claims), e.g. the workspace chosen at sign-in.
      const upstream = auth.extra?.upstream as UpstreamIdentity | undefined;
      const answer = {
        id: me.id,
        email: me.email,
        display_name: me.display_name,
        workspace: upstream?.claims.workspace_slug,
      };
      return { content: [{ type: 'text', text: JSON.stringify(answer, null, 2) }] };
    },
  );
}
