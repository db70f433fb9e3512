-- The sweeper (src/store/sweep.ts) finds every batch through an index: old grants in (created_at, id) order, and
-- idle-expired and revoked sessions.
CREATE INDEX "grants_created_at_id_idx" ON "grants"("created_at", "id");
CREATE INDEX "sessions_idle_expires_at_idx" ON "sessions"("idle_expires_at");
CREATE INDEX "sessions_revoked_at_idx" ON "sessions"("revoked_at");
