-- Conveyor schema v7 for PostgreSQL: task checkpoints (overrun moves, docs/guide.md "Queues").
--
-- ctx.checkpoint(state) stores the task's resume state on the job (JSON text), fenced by the
-- lease token like progress; the next attempt reads it back as ctx.resume_state, so a job
-- moved to the overflow queue (or retried) resumes instead of restarting.

ALTER TABLE {schema}.jobs ADD COLUMN IF NOT EXISTS checkpoint text;
