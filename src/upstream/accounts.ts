// Who an upstream account is here (spec federation §4): the allow-lists, checked at every sign-in, and the account
// resolution rules, in order. Facts in, a decision out; texts are the ones the sign-in page shows.
import type { Stores } from '../store/index.ts';
import type { SignInAccount } from '../store/upstream.ts';
import { normalizeEmail } from '../store/users.ts';
import type { ProviderConfig } from './config.ts';
import type { NormalizedIdentity } from './providers/types.ts';

export type Refusal = { status: number; message: string };

export type Resolution =
  | {
      kind: 'account';
      account: SignInAccount;
      userId: string | undefined;
      disabled: boolean;
      linked: boolean;
    }
  | ({ kind: 'refused' } & Refusal);

function verified(config: ProviderConfig, identity: NormalizedIdentity): boolean {
  return identity.emailVerified || config.trustEmail;
}

/** §4.3: undefined when the account may sign in, otherwise the refusal. */
export function checkAllowLists(config: ProviderConfig, identity: NormalizedIdentity): Refusal | undefined {
  const emailRefused = { status: 403, message: `Your ${config.name} account's email is not allowed here.` };
  if (config.allowedEmailDomains) {
    const domain = identity.email?.split('@').pop();
    if (
      !identity.email ||
      !verified(config, identity) ||
      !domain ||
      !config.allowedEmailDomains.includes(domain)
    )
      return emailRefused;
  }
  if (config.type === 'plane' && config.allowedWorkspaces) {
    const slug = String(identity.extra.workspace_slug ?? '');
    if (!config.allowedWorkspaces.includes(slug))
      return { status: 403, message: `Your Plane workspace "${slug}" is not allowed here.` };
  }
  if (config.type === 'google' && config.hostedDomain && identity.extra.hd !== config.hostedDomain)
    return emailRefused;
  return undefined;
}

/** §4.1, in order. */
export async function resolveAccount(
  stores: Stores,
  config: ProviderConfig,
  identity: NormalizedIdentity,
): Promise<Resolution> {
  const known = await stores.upstream.findIdentity(config.id, identity.subject);
  if (known) {
    return {
      kind: 'account',
      account: { kind: 'identity', identityId: known.id, userId: known.userId },
      userId: known.userId,
      disabled: known.user.disabled,
      linked: false,
    };
  }
  const email = identity.email ? normalizeEmail(identity.email) : null;
  const local = email ? await stores.users.findByEmail(email) : null;
  if (local) {
    if (config.linkPolicy !== 'verified_email' || !verified(config, identity)) {
      return {
        kind: 'refused',
        status: 409,
        message: `An account with this email already exists. Sign in with your password, or ask the operator to link your ${config.name} account.`,
      };
    }
    if (await stores.upstream.findIdentityOfUser(local.id, config.id)) {
      return {
        kind: 'refused',
        status: 409,
        message: `This account is already linked to another ${config.name} account.`,
      };
    }
    return {
      kind: 'account',
      account: { kind: 'link', userId: local.id },
      userId: local.id,
      disabled: local.disabled,
      linked: true,
    };
  }
  if (config.createUsers) {
    if (!email)
      return { kind: 'refused', status: 403, message: `${config.name} did not share an email address.` };
    return {
      kind: 'account',
      account: { kind: 'create', email, name: identity.name },
      userId: undefined,
      disabled: false,
      linked: false,
    };
  }
  return {
    kind: 'refused',
    status: 403,
    message: `No account here matches your ${config.name} account. Ask the operator for access.`,
  };
}
