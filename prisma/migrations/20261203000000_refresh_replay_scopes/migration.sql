-- A kept refresh answer's scopes, beside its sealed tokens: /token's one-statement rotation learns them only from
-- the refresh token row it claims, after the answer was sealed. Answers kept before this hold their scopes sealed.
-- AlterTable
ALTER TABLE "refresh_replays" ADD COLUMN "scopes" TEXT[];
