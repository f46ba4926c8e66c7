-- Conveyor schema v2 for SQLite: the notification outbox and per-submit callback URLs.
--
-- A job that reaches a terminal state gets an outbox row written by these triggers, inside the
-- transaction that changed the state, so "the job ended" and "it must be announced" commit
-- together (docs/decisions/0002-webhooks.md). The worker nodes' outbox consumer takes rows
-- with a lease (leased_until), turns them into webhook deliveries, then deletes them.

ALTER TABLE jobs ADD COLUMN callback_url TEXT;

CREATE TABLE IF NOT EXISTS outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id       TEXT NOT NULL,
    state        TEXT NOT NULL,
    at           REAL NOT NULL,
    leased_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_job ON outbox (job_id);

-- A job created already terminal (an enqueue whose dependency was canceled).
CREATE TRIGGER IF NOT EXISTS jobs_outbox_insert AFTER INSERT ON jobs
WHEN NEW.state IN ('succeeded', 'failed', 'canceled')
BEGIN
    INSERT INTO outbox (job_id, state, at) VALUES (NEW.id, NEW.state, coalesce(NEW.finished_at, NEW.updated_at));
END;

-- Every later transition into a terminal state: complete, fail, reap, cancel (cascades too).
CREATE TRIGGER IF NOT EXISTS jobs_outbox_update AFTER UPDATE OF state ON jobs
WHEN NEW.state IN ('succeeded', 'failed', 'canceled') AND NEW.state IS NOT OLD.state
BEGIN
    INSERT INTO outbox (job_id, state, at) VALUES (NEW.id, NEW.state, coalesce(NEW.finished_at, NEW.updated_at));
END;
