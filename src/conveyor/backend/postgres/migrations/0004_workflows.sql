-- Workflows (docs/decisions/0004-dependency-policies.md): the workflow a job was enqueued in,
-- its step name there, what it does when a dependency ends without succeeding, and how many
-- dependencies must be done before it is released (NULL: all of them).
ALTER TABLE {schema}.jobs
    ADD COLUMN workflow_id text COLLATE "C",
    ADD COLUMN step text,
    ADD COLUMN on_dependency_failure text NOT NULL DEFAULT 'cancel'
        CHECK (on_dependency_failure IN ('cancel', 'continue', 'wait')),
    ADD COLUMN quorum integer CHECK (quorum IS NULL OR quorum >= 1);

-- Jobs already waiting keep the rule they were enqueued under: a failed dependency left them
-- waiting for a redrive. New jobs default to fail-fast.
UPDATE {schema}.jobs SET on_dependency_failure = 'wait' WHERE state = 'waiting';

-- A workflow's steps, newest first like every other listing.
CREATE INDEX jobs_workflow ON {schema}.jobs (workflow_id, id) WHERE workflow_id IS NOT NULL;
