-- Live worker nodes (conveyor workers, /v1/workers): each node upserts its row every few
-- seconds and deletes it when it stops cleanly; a node that stopped beating is shown dead and
-- forgotten by maintenance after a while.
CREATE TABLE workers (
    worker_id  TEXT PRIMARY KEY,
    info       TEXT NOT NULL,
    started_at REAL NOT NULL,
    last_seen  REAL NOT NULL
);

-- W3C trace context of the submit (conveyor.tracing): the worker's span joins the request's trace.
ALTER TABLE jobs ADD COLUMN trace_context TEXT;
