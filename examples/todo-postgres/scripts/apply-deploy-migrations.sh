#!/usr/bin/env bash
# Applies the bundle's schema SQL to the database at DATABASE_URL and checks
# that the todos table and its index exist. Safe to run again: the SQL is
# idempotent.
#
#   DATABASE_URL=postgres://... bash apply-deploy-migrations.sh <name>.up.sql
#
# Needs psql. The URL is passed to psql only and never printed.
set -euo pipefail

log() { printf '[deploy-apply] %s\n' "$*"; }
fail() {
  printf '[deploy-apply] %s\n' "$*" >&2
  exit 1
}

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
  echo "usage: bash apply-deploy-migrations.sh <sql-file>" >&2
  exit 1
fi
sql=$1
command -v psql >/dev/null 2>&1 || fail "psql not found on PATH"
[ -f "$sql" ] || fail "sql artifact not found: $sql"
[ -n "${DATABASE_URL:-}" ] || fail "DATABASE_URL must be set"

log "sql artifact=$sql"
PGOPTIONS='-c client_min_messages=warning' \
  psql "$DATABASE_URL" --no-psqlrc --quiet -v ON_ERROR_STOP=1 -f "$sql" >/dev/null ||
  fail "applying $sql failed"

exists() {
  psql "$DATABASE_URL" --no-psqlrc --tuples-only --no-align -v ON_ERROR_STOP=1 \
    -c "SELECT to_regclass('$1') IS NOT NULL"
}
[ "$(exists public.todos)" = t ] || fail "todos table missing after apply"
[ "$(exists public.idx_todos_created_at)" = t ] || fail "idx_todos_created_at missing after apply"
log "schema ready table=todos index=idx_todos_created_at"
