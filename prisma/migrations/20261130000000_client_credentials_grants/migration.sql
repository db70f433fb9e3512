-- Grants without a user: a client_credentials token is issued to the client itself, with no redirect.
-- AlterTable
ALTER TABLE "grants" ALTER COLUMN "user_id" DROP NOT NULL,
ALTER COLUMN "redirect_uri" DROP NOT NULL;
