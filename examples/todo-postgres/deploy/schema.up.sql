-- Deploy-time schema for the todo API. Safe to apply any number of times:
-- every statement is guarded, and the whole file runs in one transaction.
-- It matches migrations/20260402120000_create_todos.sql; keep them in step.
BEGIN;

CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE IF NOT EXISTS todos (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title text NOT NULL,
    completed boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_todos_created_at ON todos (created_at DESC);

COMMIT;
