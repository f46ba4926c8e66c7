-- Conveyor schema v2 for PostgreSQL: the notification outbox and per-submit callback URLs.
--
-- A job that reaches a terminal state gets an outbox row written by a trigger, inside the
-- transaction (statement) that changed the state, so "the job ended" and "it must be
-- announced" commit together (docs/decisions/0002-webhooks.md). The worker nodes' outbox
-- consumer takes rows with a lease (leased_until, FOR UPDATE SKIP LOCKED), turns them into
-- webhook deliveries, then deletes them. The WHEN clauses keep every other update free.

ALTER TABLE {schema}.jobs ADD COLUMN callback_url text;

CREATE TABLE {schema}.outbox (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       text COLLATE "C" NOT NULL,
    state        text NOT NULL,
    at           double precision NOT NULL,
    leased_until double precision NOT NULL DEFAULT 0
);
CREATE INDEX outbox_job ON {schema}.outbox (job_id);

CREATE FUNCTION {schema}.record_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.outbox (job_id, state, at)
    VALUES (NEW.id, NEW.state, coalesce(NEW.finished_at, NEW.updated_at));
    RETURN NULL;
END
$$;

-- A job created already terminal (an enqueue whose dependency was canceled).
CREATE TRIGGER jobs_outbox_insert AFTER INSERT ON {schema}.jobs
FOR EACH ROW WHEN (NEW.state IN ('succeeded', 'failed', 'canceled'))
EXECUTE FUNCTION {schema}.record_outbox();

-- Every later transition into a terminal state: complete, fail, reap, cancel (cascades too).
CREATE TRIGGER jobs_outbox_update AFTER UPDATE OF state ON {schema}.jobs
FOR EACH ROW WHEN (NEW.state IN ('succeeded', 'failed', 'canceled') AND NEW.state IS DISTINCT FROM OLD.state)
EXECUTE FUNCTION {schema}.record_outbox();
