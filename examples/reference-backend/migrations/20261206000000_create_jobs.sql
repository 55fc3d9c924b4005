-- Creates the jobs table and the recovery log. Applied by `meshc migrate . up`.
--
-- Every write a job attempt makes carries the promotion epoch of its attempt
-- and is conditional on fence_epoch <= that epoch: once a newer primary has
-- written a job, a superseded primary can no longer change it. A refused write
-- is counted in fenced_writes_refused.

-- +goose Up
CREATE TABLE IF NOT EXISTS jobs (
    id uuid PRIMARY KEY,
    idempotency_key text UNIQUE,
    kind text NOT NULL,
    payload jsonb NOT NULL,
    state text NOT NULL DEFAULT 'queued'
        CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    attempt_id text NOT NULL DEFAULT '',
    execution_node text NOT NULL DEFAULT '',
    fence_epoch bigint NOT NULL DEFAULT 0,
    completions integer NOT NULL DEFAULT 0,
    fenced_writes_refused integer NOT NULL DEFAULT 0,
    result jsonb,
    error text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);

CREATE INDEX IF NOT EXISTS idx_jobs_state_created ON jobs (state, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_jobs_created ON jobs (created_at DESC);

-- One row each time an attempt takes over a job that an earlier attempt left
-- running (its node died or was superseded).
CREATE TABLE IF NOT EXISTS job_recoveries (
    id bigserial PRIMARY KEY,
    job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    previous_attempt_id text NOT NULL,
    previous_epoch bigint NOT NULL,
    previous_node text NOT NULL,
    attempt_id text NOT NULL,
    epoch bigint NOT NULL,
    node text NOT NULL,
    exit_reason text NOT NULL,
    recovered_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_job_recoveries_at ON job_recoveries (recovered_at DESC, id DESC);

-- +goose Down
DROP TABLE IF EXISTS job_recoveries;
DROP TABLE IF EXISTS jobs;
