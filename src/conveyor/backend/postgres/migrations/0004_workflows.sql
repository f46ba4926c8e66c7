-- Workflows (docs/decisions/0004-dependency-policies.md): the workflow a job was enqueued in,
-- its step name there, what it does when a dependency ends without succeeding, and how many
-- dependencies must be done before it is released (NULL: all of them).
ALTER TABLE {schema}.jobs
    ADD COLUMN workflow_id text COLLATE "C",
    ADD COLUMN step text,
    ADD COLUMN on_dependency_failure text NOT NULL DEFAULT 'cancel'
        CHECK (on_dependency_failure IN ('cancel', 'continue', 'wait')),
    ADD COLUMN quorum integer CHECK (quorum IS NULL OR quorum >= 1),
    -- How many distinct dependencies the job has, and how many of them are succeeded / failed /
    -- canceled right now: settling a dependent reads these instead of every dependency's row.
    ADD COLUMN deps_total integer NOT NULL DEFAULT 0,
    ADD COLUMN deps_succeeded integer NOT NULL DEFAULT 0,
    ADD COLUMN deps_failed integer NOT NULL DEFAULT 0,
    ADD COLUMN deps_canceled integer NOT NULL DEFAULT 0;

-- Jobs already waiting keep the rule they were enqueued under (a failed dependency left them
-- waiting for a redrive) and get their counts from the old counter of unfinished dependencies.
-- New jobs default to fail-fast.
UPDATE {schema}.jobs SET on_dependency_failure = 'wait', deps_total = json_array_length(depends_on::json),
                         deps_succeeded = json_array_length(depends_on::json) - pending_deps
WHERE state = 'waiting';

-- A workflow's steps, newest first like every other listing.
CREATE INDEX jobs_workflow ON {schema}.jobs (workflow_id, id) WHERE workflow_id IS NOT NULL;
