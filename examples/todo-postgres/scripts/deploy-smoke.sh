#!/usr/bin/env bash
# Smoke-tests a running deployment: waits for /health, then creates, reads,
# toggles, lists and deletes one todo. Spends 3 writes of the rate limit.
#
#   PORT=8080 bash deploy-smoke.sh
#   BASE_URL=https://todo.example.com bash deploy-smoke.sh
#
# Needs curl and python3 (for JSON).
set -euo pipefail

log() { printf '[deploy-smoke] %s\n' "$*"; }
fail() {
  printf '[deploy-smoke] %s\n' "$*" >&2
  exit 1
}

[ "$#" -eq 0 ] || fail "usage: [PORT=8080] [BASE_URL=http://host:port] bash deploy-smoke.sh"
command -v curl >/dev/null 2>&1 || fail "curl not found on PATH"
command -v python3 >/dev/null 2>&1 || fail "python3 not found on PATH"

port=${PORT:-8080}
[[ $port =~ ^[1-9][0-9]*$ ]] || fail "PORT must be a positive integer, got: $port"
base_url=${BASE_URL:-http://127.0.0.1:$port}
case $base_url in
  http://* | https://*) ;;
  *) fail "BASE_URL must start with http:// or https://, got: $base_url" ;;
esac
base_url=${base_url%/}

# field KEY: prints KEY of the JSON object on stdin (booleans as true/false).
field() {
  python3 -c '
import json, sys
value = json.load(sys.stdin).get(sys.argv[1], "")
print(json.dumps(value) if isinstance(value, bool) else value)
' "$1"
}

# listed ID: prints yes when the JSON array on stdin has a todo with ID.
listed() {
  python3 -c '
import json, sys
print("yes" if any(t.get("id") == sys.argv[1] for t in json.load(sys.stdin)) else "no")
' "$1"
}

# request METHOD PATH [BODY]: prints the response body; fails on a non-2xx answer.
request() {
  local args=(--silent --show-error --fail --max-time 10 -X "$1" -H 'Content-Type: application/json')
  if [ "$#" -ge 3 ]; then
    args+=(--data "$3")
  fi
  curl "${args[@]}" "$base_url$2" || fail "$1 $2 failed"
}

log "checking $base_url"
health=""
for attempt in $(seq 1 80); do
  if body=$(curl --silent --show-error --fail --max-time 2 "$base_url/health" 2>&1); then
    if [ "$(field status <<<"$body" 2>/dev/null)" = ok ] &&
      [ "$(field db_backend <<<"$body" 2>/dev/null)" = postgres ] &&
      [ "$(field clustered_handler <<<"$body" 2>/dev/null)" = work.SyncTodos ]; then
      health=$body
      break
    fi
  fi
  log "health attempt=$attempt not ready: $body"
  sleep 0.25
done
[ -n "$health" ] || fail "health never became ready at $base_url/health"
log "health ready body=$health"

created=$(request POST /todos '{"title":"deploy smoke todo"}')
id=$(field id <<<"$created")
[ -n "$id" ] || fail "create returned no id: $created"
[ "$(field title <<<"$created")" = "deploy smoke todo" ] || fail "create returned the wrong title: $created"
log "created id=$id"

fetched=$(request GET "/todos/$id")
[ "$(field title <<<"$fetched")" = "deploy smoke todo" ] || fail "get returned the wrong todo: $fetched"

toggled=$(request PUT "/todos/$id")
[ "$(field completed <<<"$toggled")" = true ] || fail "toggle did not complete the todo: $toggled"

list=$(request GET /todos)
[ "$(listed "$id" <<<"$list")" = yes ] || fail "list does not contain $id: $list"

deleted=$(request DELETE "/todos/$id")
[ "$(field id <<<"$deleted")" = "$id" ] || fail "delete answered for another id: $deleted"

final=$(request GET /todos)
[ "$(listed "$id" <<<"$final")" = no ] || fail "list still contains $id after delete: $final"

log "CRUD smoke passed id=$id"
log "final list=$final"
