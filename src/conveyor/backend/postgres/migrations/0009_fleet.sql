-- Live worker nodes (conveyor workers, /v1/workers): each node upserts its row every few
-- seconds and deletes it when it stops cleanly; a node that stopped beating is shown dead and
-- forgotten by maintenance after a while.
CREATE TABLE {schema}.workers (
    worker_id  text COLLATE "C" PRIMARY KEY,
    info       text NOT NULL,
    started_at double precision NOT NULL,
    last_seen  double precision NOT NULL
);

-- W3C trace context of the submit (conveyor.tracing): the worker's span joins the request's trace.
ALTER TABLE {schema}.jobs ADD COLUMN trace_context text;
