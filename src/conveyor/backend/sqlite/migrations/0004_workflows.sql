-- Workflows (docs/decisions/0004-dependency-policies.md): the workflow a job was enqueued in,
-- its step name there, what it does when a dependency ends without succeeding, and how many
-- dependencies must be done before it is released (NULL: all of them).
ALTER TABLE jobs ADD COLUMN workflow_id TEXT;
ALTER TABLE jobs ADD COLUMN step TEXT;
ALTER TABLE jobs ADD COLUMN on_dependency_failure TEXT NOT NULL DEFAULT 'cancel';
ALTER TABLE jobs ADD COLUMN quorum INTEGER;

-- Jobs already waiting keep the rule they were enqueued under: a failed dependency left them
-- waiting for a redrive. New jobs default to fail-fast.
UPDATE jobs SET on_dependency_failure = 'wait' WHERE state = 'waiting';

-- A workflow's steps, newest first like every other listing.
CREATE INDEX IF NOT EXISTS jobs_workflow ON jobs (workflow_id, id) WHERE workflow_id IS NOT NULL;
-- Settling a dependent reads the states of all its dependencies by id (the primary key) and
-- finds the dependents of a job through job_deps (depends_on, job_id): no other index needed.
