// A Database over an already-open PGlite instance (embedded mode, and in-memory databases in tests).
import type { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from '../generated/prisma/client.ts';
import { type Database, parseUtcTimestamp, type Statement, TIMESTAMP_OID } from './database.ts';

const RAW_PARSERS = { [TIMESTAMP_OID]: parseUtcTimestamp };

export function pgliteDatabase(pglite: PGlite, onClose?: () => Promise<void>): Database {
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite) });
  let closed = false;
  return {
    kind: 'pglite',
    prisma,
    async raw<R>({ text, values }: Statement): Promise<R[]> {
      const r = await pglite.query<R>(text, values, { parsers: RAW_PARSERS });
      return r.rows;
    },
    async withConnection(fn) {
      // PGlite is a single connection; its own mutex serialises callers.
      return fn({
        async query(sql, params) {
          const r = await pglite.query(sql, params as unknown[] | undefined);
          return r.rows as never[];
        },
        async exec(script) {
          await pglite.exec(script);
        },
      });
    },
    async listen(channel, onMessage, onState) {
      // One process owns the embedded database, so the subscription cannot be lost while it is open.
      const unlisten = await pglite.listen(channel, onMessage);
      onState(true);
      return async () => {
        if (!pglite.closed) await unlisten();
      };
    },
    async ping() {
      await pglite.query('SELECT 1');
    },
    async close() {
      if (closed) return;
      closed = true;
      await prisma.$disconnect();
      await onClose?.();
      if (!pglite.closed) await pglite.close();
    },
  };
}
