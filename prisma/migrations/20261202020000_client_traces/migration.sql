-- Client traces (README: Client traces): the last TRACE_STEPS protocol steps Latchkey saw for each client_id, for
-- `latchkey trace`. Keyed by the public client_id, not a foreign key: a CIMD URL whose first fetch failed has no
-- client row, and that failure is what its operator needs to see. Rows never hold a token, code, secret or email.
-- CreateTable
CREATE TABLE "client_traces" (
    "id" BIGSERIAL NOT NULL,
    "client_id" TEXT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "step" TEXT NOT NULL,
    "outcome" TEXT NOT NULL,
    "detail" TEXT,
    "resource" TEXT,
    "repeat" INTEGER NOT NULL DEFAULT 1,

    CONSTRAINT "client_traces_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "client_traces_client_id_at_idx" ON "client_traces"("client_id", "at");

-- CreateIndex
CREATE INDEX "client_traces_at_idx" ON "client_traces"("at");
