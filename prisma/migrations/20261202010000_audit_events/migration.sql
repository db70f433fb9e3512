-- The audit trail (README: Audit trail). No foreign keys: events outlive the users, clients and resource servers
-- they name.
-- CreateTable
CREATE TABLE "audit_events" (
    "id" UUID NOT NULL,
    "occurred_at" TIMESTAMP(3) NOT NULL,
    "action" TEXT NOT NULL,
    "outcome" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "subject" TEXT,
    "client_id" TEXT,
    "resource" TEXT,
    "address" TEXT,
    "detail" JSONB,

    CONSTRAINT "audit_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "audit_events_occurred_at_idx" ON "audit_events"("occurred_at");

-- CreateIndex
CREATE INDEX "audit_events_subject_occurred_at_idx" ON "audit_events"("subject", "occurred_at");

-- CreateIndex
CREATE INDEX "audit_events_client_id_occurred_at_idx" ON "audit_events"("client_id", "occurred_at");
