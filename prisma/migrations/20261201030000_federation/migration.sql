-- Federated sign-in (upstream identity providers). Upstream tokens move from the identity (never written) to one
-- row per upstream sign-in (upstream_logins, encrypted); the upstream authorization flows live in the database
-- (upstream_flows, state hashed); sessions and grants remember the sign-in they came from; resource servers opt in
-- to upstream claims and tokens, or require a provider.
-- AlterTable
ALTER TABLE "upstream_identities" DROP COLUMN "access_token_encrypted",
DROP COLUMN "refresh_token_encrypted",
DROP COLUMN "token_expires_at",
ADD COLUMN     "email_verified" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "last_sign_in_at" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "sessions" ADD COLUMN     "upstream_login_id" UUID;

-- AlterTable
ALTER TABLE "grants" ADD COLUMN     "upstream_login_id" UUID;

-- AlterTable
ALTER TABLE "resource_servers" ADD COLUMN     "expose_upstream_claims" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "upstream_token_providers" TEXT[],
ADD COLUMN     "required_upstream_provider" TEXT;

-- CreateTable
CREATE TABLE "upstream_logins" (
    "id" UUID NOT NULL,
    "identity_id" UUID NOT NULL,
    "provider" TEXT NOT NULL,
    "scopes" TEXT[],
    "claims" JSONB NOT NULL,
    "access_token_enc" TEXT NOT NULL,
    "refresh_token_enc" TEXT,
    "key_id" TEXT NOT NULL,
    "access_expires_at" TIMESTAMP(3),
    "refresh_expires_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "refreshed_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "refresh_lease_until" TIMESTAMP(3),
    "refresh_lease_holder" TEXT,
    "revoked_at" TIMESTAMP(3),
    "revoked_reason" TEXT,

    CONSTRAINT "upstream_logins_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "upstream_flows" (
    "id" UUID NOT NULL,
    "state_hash" TEXT NOT NULL,
    "provider" TEXT NOT NULL,
    "browser_hash" TEXT NOT NULL,
    "return_to" TEXT NOT NULL,
    "verifier_enc" TEXT,
    "nonce_enc" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMP(3) NOT NULL,
    "used_at" TIMESTAMP(3),

    CONSTRAINT "upstream_flows_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "upstream_identities_user_id_provider_key" ON "upstream_identities"("user_id", "provider");

-- CreateIndex
CREATE INDEX "sessions_upstream_login_id_idx" ON "sessions"("upstream_login_id");

-- CreateIndex
CREATE INDEX "grants_upstream_login_id_idx" ON "grants"("upstream_login_id");

-- CreateIndex
CREATE INDEX "upstream_logins_identity_id_idx" ON "upstream_logins"("identity_id");

-- CreateIndex
CREATE UNIQUE INDEX "upstream_flows_state_hash_key" ON "upstream_flows"("state_hash");

-- CreateIndex
CREATE INDEX "upstream_flows_expires_at_idx" ON "upstream_flows"("expires_at");

-- AddForeignKey
ALTER TABLE "sessions" ADD CONSTRAINT "sessions_upstream_login_id_fkey" FOREIGN KEY ("upstream_login_id") REFERENCES "upstream_logins"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "grants" ADD CONSTRAINT "grants_upstream_login_id_fkey" FOREIGN KEY ("upstream_login_id") REFERENCES "upstream_logins"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "upstream_logins" ADD CONSTRAINT "upstream_logins_identity_id_fkey" FOREIGN KEY ("identity_id") REFERENCES "upstream_identities"("id") ON DELETE CASCADE ON UPDATE CASCADE;
