// `latchkey upstream list|link|unlink`: the upstream identity providers people sign in with (UPSTREAM_PROVIDERS),
// their exact redirect URIs (what to register at the provider), and the links between upstream accounts and users.
import { redirectUri, resolveUpstreamKeys } from '../upstream/config.ts';
import { UpstreamSecretError, upstreamCipher } from '../upstream/crypto.ts';
import { CliError, type Command, doneResult } from './command.ts';
import { formatTable } from './table.ts';

export const upstreamListCommand: Command = {
  name: ['upstream', 'list'],
  summary: 'List upstream providers, the redirect URI to register at each, and linked identities',
  async run(ctx) {
    const stores = await ctx.stores();
    const counts = await stores.upstream.identityCounts();
    const keys = await stores.upstream.loginKeyCounts();
    // The server's own issuer, recorded in the database at its start: this command's environment may differ.
    const { issuer } = await ctx.issuer();
    const providers = ctx.config.upstreamProviders.map((p) => ({
      id: p.id,
      type: p.type as string,
      name: p.name,
      redirect_uri: redirectUri(issuer, p.id),
      identities: counts.get(p.id) ?? 0,
      configured: true,
    }));
    // Links to providers no longer configured stay (renaming an id orphans them): show them too.
    for (const [id, n] of counts) {
      if (!providers.some((p) => p.id === id)) {
        providers.push({ id, type: '', name: '', redirect_uri: '', identities: n, configured: false });
      }
    }
    const keyRows = keys.map((k) => ({ provider: k.provider, key_id: k.keyId, live_sign_ins: k.count }));
    if (providers.length === 0) {
      return { json: { providers, keys: keyRows }, text: 'no upstream providers (set UPSTREAM_PROVIDERS)' };
    }
    let text = formatTable(
      ['ID', 'TYPE', 'NAME', 'REDIRECT_URI', 'IDENTITIES'],
      providers.map((p) => [
        p.id,
        p.configured ? p.type : '(not configured)',
        p.name,
        p.redirect_uri,
        String(p.identities),
      ]),
    );
    if (keyRows.length > 0) {
      // Key rotation: an old key may be removed once no live sign-in is stored under it.
      text += `\n\n${formatTable(
        ['PROVIDER', 'KEY_ID', 'LIVE_SIGN_INS'],
        keyRows.map((k) => [k.provider, k.key_id, String(k.live_sign_ins)]),
      )}`;
    }
    return { json: { providers, keys: keyRows }, text };
  },
};

export const upstreamLinkCommand: Command = {
  name: ['upstream', 'link'],
  summary: 'Link a user to an upstream account (for link_policy "subject")',
  args: [
    { name: 'EMAIL', description: 'the local user' },
    { name: 'PROVIDER', description: 'the provider id from UPSTREAM_PROVIDERS' },
    {
      name: 'SUBJECT',
      description: "the upstream account's subject (sub, the Plane user id, the GitHub numeric id)",
    },
  ],
  async run(ctx, args) {
    const [email, provider, subject] = args.positionals as [string, string, string];
    if (!ctx.config.upstreamProviders.some((p) => p.id === provider))
      throw new CliError(`no upstream provider "${provider}" is configured`);
    const stores = await ctx.stores();
    const user = await stores.users.findByEmail(email);
    if (!user) throw new CliError(`no user ${email}`);
    if (!(await stores.upstream.link(user.id, provider, subject, new Date()))) {
      throw new CliError(
        `${email} already has a ${provider} account linked, or that ${provider} account is linked to someone else`,
      );
    }
    return doneResult(`linked ${email} to ${provider} account ${subject}`, {
      linked: true,
      user: email,
      provider,
      subject,
    });
  },
};

export const upstreamUnlinkCommand: Command = {
  name: ['upstream', 'unlink'],
  summary: "Unlink a user's upstream account: its grants are revoked and its sessions ended",
  args: [
    { name: 'EMAIL', description: 'the local user' },
    { name: 'PROVIDER', description: 'the provider id' },
  ],
  async run(ctx, args) {
    const [email, provider] = args.positionals as [string, string];
    const stores = await ctx.stores();
    const user = await stores.users.findByEmail(email);
    if (!user) throw new CliError(`no user ${email}`);
    const result = await stores.upstream.unlink(user.id, provider, new Date());
    if (!result) throw new CliError(`${email} has no ${provider} account linked`);
    return doneResult(
      `unlinked ${email} from ${provider}: ${result.grants} grant(s) revoked, ${result.sessions} session(s) ended`,
      {
        unlinked: true,
        user: email,
        provider,
        grants_revoked: result.grants,
        sessions_ended: result.sessions,
      },
    );
  },
};

export const upstreamRekeyCommand: Command = {
  name: ['upstream', 'rekey'],
  summary: 'Re-encrypt every stored upstream token under the first key of UPSTREAM_TOKEN_KEYS',
  description:
    'After putting a new key first in UPSTREAM_TOKEN_KEYS (and keeping the old ones), this moves every stored sign-in to the new key; `upstream list` then shows none under the old key, which can be removed.',
  async run(ctx) {
    const keys = resolveUpstreamKeys(ctx.config);
    if (keys.length === 0) throw new CliError('no upstream token keys are configured (UPSTREAM_TOKEN_KEYS)');
    const cipher = upstreamCipher(keys);
    const kid = cipher.currentKid;
    const store = (await ctx.stores()).upstream;
    let moved = 0;
    const failed = new Map<string, number>();
    let after: string | undefined;
    for (;;) {
      const batch = await store.loginsNotUnder(kid, 200, after);
      if (batch.length === 0) break;
      for (const row of batch) {
        after = row.id;
        const slot = (column: 'access_token_enc' | 'refresh_token_enc') =>
          ({ table: 'upstream_logins', column, rowId: row.id }) as const;
        try {
          const access = cipher.decrypt(row.accessTokenEnc, slot('access_token_enc'));
          const refresh =
            row.refreshTokenEnc && cipher.decrypt(row.refreshTokenEnc, slot('refresh_token_enc'));
          const done = await store.rekeyLogin(row.id, row, {
            keyId: kid,
            accessTokenEnc: cipher.encrypt(access, slot('access_token_enc')),
            refreshTokenEnc: refresh ? cipher.encrypt(refresh, slot('refresh_token_enc')) : null,
          });
          if (done) moved++;
        } catch (err) {
          if (!(err instanceof UpstreamSecretError)) throw err;
          failed.set(row.keyId, (failed.get(row.keyId) ?? 0) + 1);
        }
      }
    }
    if (failed.size > 0) {
      const which = [...failed].map(([k, n]) => `${n} under "${k}"`).join(', ');
      throw new CliError(
        `re-encrypted ${moved} upstream sign-in(s) under key ${kid}, but could not decrypt ${which}: is that key ` +
          'still in UPSTREAM_TOKEN_KEYS?',
      );
    }
    return doneResult(`re-encrypted ${moved} upstream sign-in(s) under key ${kid}`, {
      re_encrypted: moved,
      key_id: kid,
    });
  },
};

export const upstreamCommands: readonly Command[] = [
  upstreamListCommand,
  upstreamLinkCommand,
  upstreamUnlinkCommand,
  upstreamRekeyCommand,
];
