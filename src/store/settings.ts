// Facts a running server records for the CLI and the other instances (table `settings`, one row per key), e.g. the
// issuer it serves, so a command run with another environment still prints the server's own URLs.
import type { PrismaClient } from '../generated/prisma/client.ts';

/** The keys in use: a closed list, so a typo is a type error rather than a row nobody reads. */
export type SettingKey = 'issuer';

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
  };
}

export type SettingStore = ReturnType<typeof settingStore>;
