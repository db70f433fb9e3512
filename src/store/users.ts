// Users: people who sign in on Latchkey's pages. Emails are stored lower-cased and unique.
import type { PrismaClient, User } from '../generated/prisma/client.ts';
import { hashPassword } from '../lib/crypto.ts';
import { audit, OPERATOR } from './audit.ts';
import { notifyChange } from './changes.ts';

export class EmailTakenError extends Error {
  constructor(readonly email: string) {
    super(`a user with the email ${email} already exists`);
    this.name = 'EmailTakenError';
  }
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

const EMAIL = /^[^\s@]+@[^\s@]+$/;

export function isValidEmail(email: string): boolean {
  return EMAIL.test(email) && email.length <= 254;
}

export interface NewUser {
  email: string;
  name?: string | undefined;
  password?: string | undefined;
}

export function userStore(prisma: PrismaClient) {
  return {
    async create({ email, name, password }: NewUser): Promise<User> {
      const normalized = normalizeEmail(email);
      if (!isValidEmail(normalized)) throw new Error(`"${email}" is not an email address`);
      const passwordHash = password === undefined ? null : await hashPassword(password);
      try {
        // The CLI adds users through a busy server's socket (README: CLI), where the embedded database runs one
        // transaction at a time: wait for a turn longer than Prisma's 2 s default.
        return await prisma.$transaction(
          async (tx) => {
            const data = { email: normalized, name: name ?? null, passwordHash };
            const user = await tx.user.create({ data });
            const detail = { password: passwordHash !== null };
            await audit(tx, {
              action: 'user_added',
              ...OPERATOR,
              subject: user.id,
              detail,
              at: user.createdAt,
            });
            return user;
          },
          { maxWait: 15_000 },
        );
      } catch (err) {
        if ((err as { code?: string }).code === 'P2002') throw new EmailTakenError(normalized);
        throw err;
      }
    },

    findByEmail(email: string): Promise<User | null> {
      return prisma.user.findUnique({ where: { email: normalizeEmail(email) } });
    },

    /** Disables or re-enables a user; a disabled user's tokens read inactive at once. */
    async setDisabled(email: string, disabled: boolean): Promise<boolean> {
      const r = await prisma.user.updateMany({ where: { email: normalizeEmail(email) }, data: { disabled } });
      if (r.count > 0) await notifyChange(prisma, 'user');
      return r.count > 0;
    },

    list(): Promise<User[]> {
      return prisma.user.findMany({ orderBy: { createdAt: 'asc' } });
    },
  };
}

export type UserStore = ReturnType<typeof userStore>;
