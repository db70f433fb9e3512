-- Running server instances (README: How it is built). Each server writes its row at start, refreshes
-- heartbeat_at every few seconds and deletes it on a clean stop. A revocation waits until every instance with a
-- fresh heartbeat has acknowledged it; an instance whose heartbeat lapsed is skipped.
-- CreateTable
CREATE TABLE "instances" (
    "id" UUID NOT NULL,
    "host" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "started_at" TIMESTAMP(3) NOT NULL,
    "heartbeat_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "instances_pkey" PRIMARY KEY ("id")
);
