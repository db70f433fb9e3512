// What every provider module offers (spec federation §9): the authorization URL, the code exchange, the identity
// fetch, and the refresh that token exchange calls (§6.3 step 4). Outcomes are facts; the flow and the exchange decide
// status and text, and never show upstream text to people.
import type * as oauth from 'oauth4webapi';
import type { Clock } from '../../lib/clock.ts';
import type { ProviderConfig } from '../config.ts';
import type { LimitedFetch } from '../http.ts';

export interface TokenSet {
  accessToken: string;
  /** Absent when the provider returned none (a refresh keeps the old one then). */
  refreshToken?: string;
  /** Seconds; absent: unknown or no expiry (GitHub OAuth-app tokens). */
  expiresIn?: number;
  refreshExpiresIn?: number;
  /** Granted scopes, when the response said. */
  scopes?: string[];
  /** OIDC: the validated ID token's claims. */
  idTokenClaims?: Record<string, unknown>;
}

/** The answer of the upstream token endpoint to a code. */
export type CodeOutcome =
  | { kind: 'ok'; tokens: TokenSet }
  /** Network error, timeout, 5xx or 429. */
  | { kind: 'unavailable'; reason: string }
  | { kind: 'invalid_grant' }
  /** invalid_client or unauthorized_client: the operator's client_id/client_secret. */
  | { kind: 'client_error'; error: string }
  /** The ID token did not verify (iss, aud, azp, exp/iat, nonce). */
  | { kind: 'unverifiable'; reason: string }
  /** Any other error, or a 200 without a usable bearer token. */
  | { kind: 'failed'; error?: string; reason: string };

/** The refresh of §6.3 step 4, classified as step 5 needs it. */
export type RefreshOutcome =
  | { kind: 'ok'; tokens: TokenSet }
  /** 400/401 invalid_grant (or 200-with-error invalid_grant): the upstream authorization is gone. */
  | { kind: 'invalid_grant' }
  /** Timeout, network error, 5xx or 429: revoke nothing, try later. */
  | { kind: 'unavailable'; reason: string }
  /** invalid_client, unauthorized_client, another 4xx, or a malformed answer: revoke nothing, log at error. */
  | { kind: 'other'; error: string; reason: string };

/** The upstream account, normalized (§3.5). */
export interface NormalizedIdentity {
  subject: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  username: string | null;
  /** Provider extras (Plane workspace, GitHub login, exposed claims). */
  extra: Record<string, unknown>;
}

export type IdentityOutcome =
  | { kind: 'ok'; identity: NormalizedIdentity }
  /** 401/403 from the identity endpoints: the token was not accepted. */
  | { kind: 'rejected'; reason: string }
  | { kind: 'unavailable'; reason: string }
  /** Userinfo's sub differs from the ID token's. */
  | { kind: 'mismatch' }
  /** A refusal with its own page text (Plane installations, allow-listed orgs). */
  | { kind: 'refused'; status: 403 | 502; message: string };

export interface AuthorizeParams {
  redirectUri: string;
  state: string;
  codeChallenge: string | undefined;
  nonce: string | undefined;
}

export interface ProviderDeps {
  fetch: LimitedFetch;
  clock: Clock;
  /** http:// URLs on loopback were allowed by UPSTREAM_ALLOW_INSECURE_LOOPBACK. */
  allowInsecureLoopback: boolean;
  log: { warn(obj: object, msg: string): void };
}

export interface UpstreamProvider {
  readonly config: ProviderConfig;
  /** OIDC providers send a nonce and require an ID token. */
  readonly usesNonce: boolean;
  /** The origin(s) of the browser-facing authorization endpoint, for the sign-in page's CSP form-action. */
  formTargets(): string[];
  /** The authorization server: fetched metadata (cached, stale-if-error 24 h) or the hand-built one; undefined when unreachable. */
  server(): Promise<oauth.AuthorizationServer | undefined>;
  authorizeUrl(as: oauth.AuthorizationServer, p: AuthorizeParams): URL;
  /**
   * RFC 9207 (after the `error` check): the callback parameters oauth4webapi accepts for the code exchange, or
   * undefined when `iss` is required and missing, or present and wrong.
   */
  validateCallback(as: oauth.AuthorizationServer, callback: URLSearchParams): URLSearchParams | undefined;
  exchangeCode(
    as: oauth.AuthorizationServer,
    callback: URLSearchParams,
    p: { redirectUri: string; verifier: string | undefined; nonce: string | undefined },
  ): Promise<CodeOutcome>;
  fetchIdentity(
    as: oauth.AuthorizationServer,
    tokens: TokenSet,
    callback: URLSearchParams,
  ): Promise<IdentityOutcome>;
  /** Uses the upstream refresh token; never sends `scope`. */
  refresh(refreshToken: string): Promise<RefreshOutcome>;
  /**
   * Best effort: tells the provider to forget tokens Latchkey will not keep (a person refused after the code
   * exchange). Absent where the provider documents no revocation (Plane). Never throws.
   */
  revoke?(tokens: TokenSet): Promise<void>;
}
