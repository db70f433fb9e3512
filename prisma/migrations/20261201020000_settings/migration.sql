-- Facts a running server records for the CLI and the other instances: `issuer` is the ISSUER the server last started
-- with, so commands that print Latchkey's URLs print the server's, not the CLI's own environment's.
-- CreateTable
CREATE TABLE "settings" (
    "key" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "settings_pkey" PRIMARY KEY ("key")
);
