// Facts a running server records for the CLI and the other instances (table `settings`, one row per key), e.g. the
// issuer it serves, so a command run with another environment still prints the server's own URLs; and the
// deployment's token tag key (src/lib/token-tags.ts), which every instance on the database shares.
import { randomBytes } from 'node:crypto';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { TokenTags } from '../lib/token-tags.ts';

/** The keys in use: a closed list, so a typo is a type error rather than a row nobody reads. */
export type SettingKey = 'issuer';

/** The token tag key's row: written once, never updated, so its `updated_at` is when the key was created. */
const TOKEN_TAG_KEY = 'token_tag_key';

export function settingStore(prisma: PrismaClient) {
  return {
    async get(key: SettingKey): Promise<string | undefined> {
      return (await prisma.setting.findUnique({ where: { key } }))?.value;
    },

    /** Records `value` under `key` (one upsert). */
    async set(key: SettingKey, value: string, now: Date): Promise<void> {
      await prisma.setting.upsert({
        where: { key },
        create: { key, value, updatedAt: now },
        update: { value, updatedAt: now },
      });
    },

    /**
     * The deployment's token tag key, created at `now` by the first instance that asks. Instances starting together
     * agree: each inserts its own candidate with ON CONFLICT DO NOTHING, then all read the one row that won.
     */
    async tokenTags(now: Date): Promise<TokenTags> {
      let row = await prisma.setting.findUnique({ where: { key: TOKEN_TAG_KEY } });
      if (!row) {
        const value = randomBytes(32).toString('base64url');
        await prisma.setting.createMany({
          data: [{ key: TOKEN_TAG_KEY, value, updatedAt: now }],
          skipDuplicates: true,
        });
        row = await prisma.setting.findUniqueOrThrow({ where: { key: TOKEN_TAG_KEY } });
      }
      return new TokenTags(Buffer.from(row.value, 'base64url'), row.updatedAt);
    },
  };
}

export type SettingStore = ReturnType<typeof settingStore>;

/**
 * The token tag key of one database, read once (one statement; two more the first time, when it is created) and
 * shared by the stores that mint tokens. A failed read is not remembered: the next mint tries again.
 */
export function tokenTagSource(prisma: PrismaClient) {
  const settings = settingStore(prisma);
  let loaded: TokenTags | undefined;
  let loading: Promise<TokenTags> | undefined;
  return {
    /** The key, creating it at `now` if this database has none yet. */
    load(now: Date): Promise<TokenTags> {
      if (loaded) return Promise.resolve(loaded);
      loading ??= settings.tokenTags(now).then(
        (tags) => {
          loaded = tags;
          return tags;
        },
        (err: unknown) => {
          loading = undefined;
          throw err;
        },
      );
      return loading;
    },
  };
}

export type TokenTagSource = ReturnType<typeof tokenTagSource>;
