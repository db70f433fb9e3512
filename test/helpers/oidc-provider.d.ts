// The part of oidc-provider@9 (panva; ships no type declarations) that test/helpers/upstream-oidc.ts uses.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface ProviderContext {
    oidc: {
      params?: Record<string, unknown>;
      route?: string;
    };
  }

  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    readonly issuer: string;
    /** A Node request listener (Koa's callback). */
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    on(event: 'grant.success', listener: (ctx: ProviderContext) => void): this;
    on(
      event: 'grant.error',
      listener: (ctx: ProviderContext, error: Error & { error?: string }) => void,
    ): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
}
