// The contract between /token and a grant type: what a handler is told, what it answers, and what the registry
// knows about it (for metadata, registration and the CLI). One module per grant type implements it.
import type { Client } from '../../generated/prisma/client.ts';
import type { Metrics, RefreshOutcome, ReplayKind } from '../../metrics/metrics.ts';
import type { ResourceServerStore } from '../../store/resource-servers.ts';
import type { IssuedTokens, RevokeReason, TokenStore } from '../../store/tokens.ts';
import type { UpstreamExchange } from '../../upstream/exchange.ts';
import type { OAuthError } from '../errors.ts';
import type { Params } from '../params.ts';

/** A token request that has passed the pipeline's common steps: parsed, client authenticated and allowed. */
export interface TokenRequest {
  client: Client;
  params: Params;
  now: Date;
}

export type GrantHandler = (request: TokenRequest) => Promise<IssuedTokens>;

/** What every handler may be given; each declares the narrow part it needs. */
export interface GrantDependencies {
  tokens: TokenStore;
  resourceServers: ResourceServerStore;
  /** Resolves once every instance's caches know of this instance's revocations. */
  flushChanges(): Promise<void>;
  /** The upstream token exchange (RFC 8693); absent when no upstream provider is configured. */
  upstreamExchange?: UpstreamExchange | undefined;
  /** Counts refreshes, replays and revocations once their transaction has committed. */
  metrics?: GrantMetrics;
  config: {
    accessTokenTtl: number;
    refreshTokenTtl: number;
    refreshReuseWindow: number;
    scopes: readonly string[];
  };
}

export interface GrantType<Deps = GrantDependencies> {
  /** The grant_type value (RFC 6749 §4, or an extension URI). */
  readonly type: string;
  /** Whether it starts a grant (false for refresh_token, which continues one another grant started). */
  readonly initial: boolean;
  /** Whether clients of this grant send people through /authorize and so need redirect URIs. */
  readonly redirects: boolean;
  /** Whether only clients with a secret may use it (RFC 6749 §4.4.2: client credentials). */
  readonly confidentialOnly: boolean;
  /**
   * Whether a client may ask for it in dynamic registration or a Client ID Metadata Document. Grants that give a
   * client tokens with no person's approval are for clients an operator created.
   */
  readonly selfRegistered: boolean;
  create(deps: Deps): GrantHandler;
}

export type GrantMetrics = Pick<Metrics, 'refresh' | 'replay' | 'revoked'>;

/** What a committed outcome counts (README: Metrics). */
export interface OutcomeEvents {
  refresh?: RefreshOutcome;
  replay?: ReplayKind;
  /** The grant was revoked, for this reason. */
  revoked?: RevokeReason;
}

/** What a handler's transaction decided: tokens, or the error to answer once the transaction has committed. */
export type Outcome = ({ tokens: IssuedTokens } | { error: OAuthError; revokedIssued: boolean }) &
  OutcomeEvents;

/**
 * Answers a committed outcome. When the transaction revoked tokens already issued (a replay), every instance's
 * caches must know before the client hears of it (RFC 7009 §2.2's "immediately", applied to replays).
 */
export async function settle(
  outcome: Outcome,
  flushChanges: () => Promise<void>,
  metrics?: GrantMetrics,
): Promise<IssuedTokens> {
  if (outcome.refresh) metrics?.refresh(outcome.refresh);
  if (outcome.replay) metrics?.replay(outcome.replay);
  if (outcome.revoked) metrics?.revoked(outcome.revoked, 'grant');
  if ('tokens' in outcome) return outcome.tokens;
  if (outcome.revokedIssued) await flushChanges();
  throw outcome.error;
}
