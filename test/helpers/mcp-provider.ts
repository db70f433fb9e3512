// An OAuthClientProvider for the official MCP TypeScript SDK that plays the person in a test: when the SDK
// redirects to Latchkey, it signs in and approves by submitting Latchkey's forms over HTTP, and keeps the code.
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { FormBrowser } from './browser.ts';

export interface HeadlessProviderOptions {
  issuer: string;
  email?: string;
  password?: string;
  /** Sign in through this upstream provider instead (its pages approve at once): its id and its browser origin. */
  upstream?: { provider: string; origin: string };
  redirectUrl?: string;
  /** Pre-registered client information (skips registration). */
  clientInformation?: OAuthClientInformationMixed;
  /** CIMD: an https URL whose document describes this client. */
  clientMetadataUrl?: string;
  clientMetadata?: Partial<OAuthClientMetadata>;
  decision?: 'approve' | 'deny';
}

export class HeadlessProvider implements OAuthClientProvider {
  readonly browser: FormBrowser;
  private info: OAuthClientInformationMixed | undefined;
  private savedTokens: OAuthTokens | undefined;
  private verifier = '';
  /** The authorization code from the last redirect, and the callback URL it came on. */
  code: string | undefined;
  lastCallback: URL | undefined;
  authorizationUrls: URL[] = [];
  readonly clientMetadataUrl: string | undefined;

  constructor(private readonly options: HeadlessProviderOptions) {
    this.browser = new FormBrowser(options.issuer, {
      follow: options.upstream ? [options.upstream.origin] : [],
    });
    this.info = options.clientInformation;
    this.clientMetadataUrl = options.clientMetadataUrl;
  }

  get redirectUrl(): string {
    return this.options.redirectUrl ?? 'http://127.0.0.1:8976/callback';
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'MCP SDK test client',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...this.options.clientMetadata,
    };
  }

  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.info;
  }

  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.info = info;
  }

  tokens(): OAuthTokens | undefined {
    return this.savedTokens;
  }

  saveTokens(tokens: OAuthTokens): void {
    this.savedTokens = tokens;
  }

  async redirectToAuthorization(url: URL): Promise<void> {
    this.authorizationUrls.push(url);
    const { email, password, upstream } = this.options;
    const callback = await this.browser.authorize(
      url.href,
      upstream ? { upstream: upstream.provider } : { email: email ?? '', password: password ?? '' },
      this.options.decision ?? 'approve',
    );
    this.lastCallback = callback;
    this.code = callback.searchParams.get('code') ?? undefined;
  }

  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
  }

  codeVerifier(): string {
    return this.verifier;
  }

  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier'): void {
    if (scope === 'all' || scope === 'client') this.info = undefined;
    if (scope === 'all' || scope === 'tokens') this.savedTokens = undefined;
  }
}
