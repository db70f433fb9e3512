// The fields of one UPSTREAM_PROVIDERS entry: which a type accepts (unknown ones are typos), their types, the
// per-type defaults (spec federation §2.1), and the URL rule. Every problem goes through `fail(field, problem)`.
import type { ProviderConfig, ProviderType, TokenAuthMethod } from './config.ts';

export type RawEntry = Record<string, unknown>;
type Fail = (field: string, problem: string) => never;
type Url = (field: string, value: string) => string;

const COMMON = [
  'id',
  'type',
  'name',
  'client_id',
  'client_secret',
  'scopes',
  'token_endpoint_auth_method',
  'pkce',
  'extra_authorize_params',
  'link_policy',
  'create_users',
  'allow_anyone',
  'allowed_email_domains',
  'trust_email',
];

const SPECIFIC: Record<ProviderType, string[]> = {
  oidc: ['issuer', 'expose_claims'],
  google: ['issuer', 'hosted_domain', 'expose_claims'],
  oauth2: [
    'authorization_endpoint',
    'token_endpoint',
    'userinfo_endpoint',
    'revocation_endpoint',
    'subject_claim',
    'email_claim',
    'email_verified_claim',
    'name_claim',
    'username_claim',
    'expose_claims',
  ],
  plane: ['base_url', 'internal_base_url', 'allowed_workspaces'],
  github: ['base_url', 'api_base_url', 'allowed_orgs'],
};

const RESERVED_PARAMS = [
  'client_id',
  'redirect_uri',
  'response_type',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
];

const AUTH_METHODS: readonly TokenAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'none'];
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** https (or http on a loopback host when allowed), absolute, no fragment or credentials. */
export function checkUpstreamUrl(value: string, allowLoopback: boolean, fail: Fail, field: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail(field, 'must be an absolute URL');
  }
  const loopbackHttp = url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
  if (url.protocol !== 'https:' && !(loopbackHttp && allowLoopback)) {
    return fail(
      field,
      loopbackHttp ? 'http needs UPSTREAM_ALLOW_INSECURE_LOOPBACK=true' : 'must be an https URL',
    );
  }
  if (url.hash || value.includes('#')) return fail(field, 'must not have a fragment');
  if (url.username || url.password) return fail(field, 'must not carry credentials');
  // Base URLs get paths appended: no trailing slash. Issuers and endpoints are kept exactly as written (an endpoint's
  // trailing slash can matter, as Plane's do; an issuer is compared as the provider writes it).
  return field.endsWith('base_url') ? url.href.replace(/\/+$/, '') : value;
}

export function providerFields(entry: RawEntry, type: ProviderType, fail: Fail, url: Url): ProviderConfig {
  const allowed = new Set([...COMMON, ...SPECIFIC[type]]);
  for (const key of Object.keys(entry)) {
    if (allowed.has(key)) continue;
    const owner = (Object.keys(SPECIFIC) as ProviderType[]).find((t) => SPECIFIC[t].includes(key));
    fail(key, owner ? `is not a field of type "${type}"` : 'is not a known field');
  }
  const str = (k: string, required = false): string | undefined => {
    const v = entry[k];
    if (v === undefined) return required ? fail(k, 'is required') : undefined;
    if (typeof v !== 'string' || v.trim() === '') return fail(k, 'must be a non-empty string');
    return v;
  };
  const bool = (k: string, fallback: boolean): boolean => {
    const v = entry[k];
    if (v === undefined) return fallback;
    return typeof v === 'boolean' ? v : fail(k, 'must be true or false');
  };
  const strings = (k: string, max = 100): string[] | undefined => {
    const v = entry[k];
    if (v === undefined) return undefined;
    if (
      !Array.isArray(v) ||
      v.length > max ||
      !v.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 255)
    )
      return fail(k, `must be an array of at most ${max} non-empty strings`);
    return v as string[];
  };
  const optUrl = (k: string, fallback?: string): string | undefined => {
    const v = str(k);
    return v === undefined ? fallback : url(k, v);
  };
  const reqUrl = (k: string): string => url(k, str(k, true) as string);

  const presets: Partial<Record<ProviderType, string>> = {
    plane: 'Plane',
    github: 'GitHub',
    google: 'Google',
  };
  const name = str('name', !presets[type]) ?? (presets[type] as string);
  const authMethod = str('token_endpoint_auth_method') as TokenAuthMethod | undefined;
  if (authMethod !== undefined && !AUTH_METHODS.includes(authMethod))
    fail('token_endpoint_auth_method', `must be one of ${AUTH_METHODS.join(', ')}`);
  const clientId = str('client_id', true) as string;
  const clientSecret = str('client_secret', authMethod !== 'none');
  const extra = entry.extra_authorize_params ?? {};
  if (typeof extra !== 'object' || extra === null || Array.isArray(extra))
    fail('extra_authorize_params', 'must be an object of string values');
  for (const [k, v] of Object.entries(extra as object)) {
    if (typeof v !== 'string') fail('extra_authorize_params', `"${k}" must be a string`);
    if (RESERVED_PARAMS.includes(k)) fail('extra_authorize_params', `may not set "${k}"`);
  }
  const linkPolicy = str('link_policy') ?? 'subject';
  if (linkPolicy !== 'subject' && linkPolicy !== 'verified_email')
    fail('link_policy', 'must be "subject" or "verified_email"');
  const domains = strings('allowed_email_domains')?.map((d) => d.toLowerCase());
  const exposeClaims = strings('expose_claims', 20) ?? [];
  if (exposeClaims.some((c) => c.length > 64))
    fail('expose_claims', 'each claim name is at most 64 characters');
  const defaults: Record<ProviderType, { scopes: string[]; auth: TokenAuthMethod | undefined }> = {
    oidc: { scopes: ['openid', 'email', 'profile'], auth: undefined },
    google: { scopes: ['openid', 'email', 'profile'], auth: undefined },
    oauth2: { scopes: [], auth: 'client_secret_basic' },
    plane: { scopes: ['read', 'write'], auth: 'client_secret_post' },
    github: { scopes: ['read:user', 'user:email'], auth: 'client_secret_post' },
  };
  const scopes = strings('scopes') ?? defaults[type].scopes;
  const googleParams: Record<string, string> =
    type === 'google' ? { access_type: 'offline', prompt: 'consent' } : {};
  const common = {
    id: entry.id as string,
    name,
    clientId,
    clientSecret,
    scopes,
    tokenEndpointAuthMethod: authMethod ?? defaults[type].auth,
    pkce: bool('pkce', true),
    extraAuthorizeParams: { ...googleParams, ...(extra as Record<string, string>) } as Record<string, string>,
    linkPolicy: linkPolicy as 'subject' | 'verified_email',
    createUsers: bool('create_users', false),
    allowAnyone: bool('allow_anyone', false),
    allowedEmailDomains: domains,
    trustEmail: bool('trust_email', false),
    exposeClaims,
  };

  let provider: ProviderConfig;
  switch (type) {
    case 'oidc':
    case 'google': {
      const hostedDomain = type === 'google' ? str('hosted_domain')?.toLowerCase() : undefined;
      if (hostedDomain) common.extraAuthorizeParams = { ...common.extraAuthorizeParams, hd: hostedDomain };
      const issuer =
        type === 'google' ? (optUrl('issuer') ?? 'https://accounts.google.com') : reqUrl('issuer');
      provider = { ...common, type, issuer, hostedDomain };
      break;
    }
    case 'oauth2':
      provider = {
        ...common,
        type,
        authorizationEndpoint: reqUrl('authorization_endpoint'),
        tokenEndpoint: reqUrl('token_endpoint'),
        userinfoEndpoint: reqUrl('userinfo_endpoint'),
        revocationEndpoint: optUrl('revocation_endpoint'),
        subjectClaim: str('subject_claim') ?? 'sub',
        emailClaim: str('email_claim') ?? 'email',
        emailVerifiedClaim: str('email_verified_claim'),
        nameClaim: str('name_claim') ?? 'name',
        usernameClaim: str('username_claim'),
      };
      break;
    case 'plane': {
      const baseUrl = optUrl('base_url', 'https://api.plane.so') as string;
      provider = {
        ...common,
        type,
        baseUrl,
        internalBaseUrl: optUrl('internal_base_url', baseUrl) as string,
        allowedWorkspaces: strings('allowed_workspaces'),
      };
      break;
    }
    case 'github':
      provider = {
        ...common,
        type,
        baseUrl: optUrl('base_url', 'https://github.com') as string,
        apiBaseUrl: optUrl('api_base_url', 'https://api.github.com') as string,
        allowedOrgs: strings('allowed_orgs'),
      };
      break;
  }
  const hasAllowList =
    !!provider.allowedEmailDomains ||
    (provider.type === 'plane' && !!provider.allowedWorkspaces) ||
    (provider.type === 'github' && !!provider.allowedOrgs) ||
    (provider.type === 'google' && !!provider.hostedDomain);
  if (provider.createUsers && !hasAllowList && !provider.allowAnyone) {
    fail(
      'create_users',
      'needs an allow-list (allowed_email_domains, allowed_workspaces, allowed_orgs or hosted_domain) or "allow_anyone": true',
    );
  }
  return provider;
}
