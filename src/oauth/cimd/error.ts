// How a Client ID Metadata Document failure is reported (draft-ietf-oauth-client-id-metadata-document-01).
// Every failure is invalid_client (RFC 6749 §5.2): the client_id cannot be used. The description goes on the wire;
// `detail` only to the log, and `staleUsable` tells the cache whether a recent document may still serve
// (RFC 5861 stale-if-error).
import { OAuthError } from '../errors.ts';

/** A fetch or validation failure. The description goes on the wire; `detail` only to the log. */
export class CimdError extends OAuthError {
  /** True for transport failures and 5xx: the host is failing, so a recent document may serve (RFC 5861). */
  readonly staleUsable: boolean;
  readonly detail: string | undefined;
  constructor(description: string, options: { staleUsable?: boolean; detail?: string } = {}) {
    super('invalid_client', `client metadata document: ${description}`);
    this.name = 'CimdError';
    this.staleUsable = options.staleUsable ?? false;
    this.detail = options.detail;
  }
}

export interface WarnLogger {
  warn(obj: object, msg: string): void;
}
