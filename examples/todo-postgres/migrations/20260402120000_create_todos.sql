-- Creates the todos table. Applied by `meshc migrate . up`; the deploy bundle
-- carries the same schema as deploy/schema.up.sql.

-- +goose Up
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE IF NOT EXISTS todos (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    title text NOT NULL,
    completed boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_todos_created_at ON todos (created_at DESC);

-- +goose Down
DROP TABLE IF EXISTS todos;
