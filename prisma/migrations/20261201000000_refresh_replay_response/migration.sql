-- The answer a refresh gave, kept for REFRESH_REUSE_WINDOW so a concurrent replay of the same refresh token gets
-- the same pair (no second token family). Sealed (AES-256-GCM) under a key derived from the spent refresh token.
-- CreateTable
CREATE TABLE "refresh_replays" (
    "id" UUID NOT NULL,
    "sealed" TEXT NOT NULL,
    "expires_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "refresh_replays_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "refresh_replays_expires_at_idx" ON "refresh_replays"("expires_at");

-- AddForeignKey
ALTER TABLE "refresh_replays" ADD CONSTRAINT "refresh_replays_id_fkey" FOREIGN KEY ("id") REFERENCES "refresh_tokens"("id") ON DELETE CASCADE ON UPDATE CASCADE;
