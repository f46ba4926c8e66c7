-- Workflows (docs/decisions/0004-dependency-policies.md): the workflow a job was enqueued in,
-- its step name there, what it does when a dependency ends without succeeding, and how many
-- dependencies must be done before it is released (NULL: all of them).
ALTER TABLE jobs ADD COLUMN workflow_id TEXT;
ALTER TABLE jobs ADD COLUMN step TEXT;
ALTER TABLE jobs ADD COLUMN on_dependency_failure TEXT NOT NULL DEFAULT 'cancel';
ALTER TABLE jobs ADD COLUMN quorum INTEGER;
-- How many distinct dependencies the job has, and how many of them are succeeded / failed /
-- canceled right now: settling a dependent reads these instead of every dependency's row.
ALTER TABLE jobs ADD COLUMN deps_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN deps_succeeded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN deps_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN deps_canceled INTEGER NOT NULL DEFAULT 0;

-- Jobs already waiting keep the rule they were enqueued under (a failed dependency left them
-- waiting for a redrive) and get their counts from the old counter of unfinished dependencies.
-- New jobs default to fail-fast.
UPDATE jobs SET on_dependency_failure = 'wait', deps_total = json_array_length(depends_on),
                deps_succeeded = json_array_length(depends_on) - pending_deps
WHERE state = 'waiting';

-- A workflow's steps, newest first like every other listing.
CREATE INDEX IF NOT EXISTS jobs_workflow ON jobs (workflow_id, id) WHERE workflow_id IS NOT NULL;
-- Settling a dependent reads the states of all its dependencies by id (the primary key) and
-- finds the dependents of a job through job_deps (depends_on, job_id): no other index needed.
