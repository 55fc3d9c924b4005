#!/usr/bin/env bash
# verify-backend.sh — proof rail of the reference backend
# (examples/reference-backend): 200 jobs on a pair survive the loss of the
# node running them, each succeeds exactly once, and the superseded attempt's
# write is refused by the database.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: bash scripts/verify-backend.sh [--help | --phases]

  --phases  print the phase names, in order, and exit (touches nothing)

Proves:
  On one isolated database:
  1. the backend's own check passes (examples/reference-backend/scripts/verify.sh:
     gofmt, vet, unit tests with PostgreSQL required, build);
  2. meshc migrate status lists the migration as pending, up applies it,
     status then lists it as applied;
  3. a primary (reference-backend-primary@127.0.0.1:P) and a standby
     (reference-backend-standby@[::1]:P) form a cluster at epoch 0;
  4. 200 jobs are POSTed through both nodes, each with an Idempotency-Key
     (JOBS_SLOW of them sleep JOB_SLEEP_MS); 20 POSTs are retried with the
     same key and answer the same job id;
  5. while slow jobs run on the primary it is frozen (SIGSTOP): the standby
     promotes itself at epoch 1 and takes the jobs over under new attempts
     (their claims carry epoch 1); the primary is then resumed, so its
     superseded attempts finish and write — and the database refuses those
     writes (fenced_writes_refused >= 1); then it is SIGKILLed;
  6. the killed node restarted with its original env rejoins as standby at
     epoch 1 (fenced_rejoin);
  7. every job ends succeeded, written exactly once (completions = 1 for all
     200 rows, 200 rows in all: the retries created no second job); the
     recovery signals on GET /health moved (restart_count, recovered_jobs,
     last_recovery_at, last_recovery_job_id, last_exit_reason) and agree on
     both nodes; a recovered job's continuity record on the promoted node
     carries the take-over attempt at epoch 1;
  8. no node log carries DATABASE_URL or the cookie.
  The figures (jobs, kills, recovered, duplicates, fenced writes refused)
  are printed at the end and kept in figures.json.

Inputs:
  DATABASE_URL  optional admin connection (postgres:// or postgresql://); the
                rail creates and drops its own database from it. Unset: a
                throwaway PostgreSQL (initdb + pg_ctl, 127.0.0.1 only) is
                started and removed on exit.
  JOBS_SLOW     number of slow jobs among the 200 (default 40)
  JOB_SLEEP_MS  duration of a slow job (default 8000)
  TMPDIR        scratch space (must be outside the repo).
  Tools: bash, coreutils, go, python3, curl, psql (+ initdb/pg_ctl when
  DATABASE_URL is unset), an IPv6 loopback (::1). MESH_* and PORT from your
  shell are ignored.

Never:
  - writes DATABASE_URL or the cluster cookie to any retained file (redacted,
    then scanned; a hit fails the run), nor passes them on a command line;
  - leaves a node, a database or a temp dir behind.

Artifacts:
  .tmp/backend/verify/{status.txt,current-phase.txt,phase-report.txt,
  full-contract.log,figures.json,<phase>.log,...}; a dated proof bundle under
  .tmp/backend/proof-bundles/ named by verify/latest-proof-bundle.txt.
EOF
}

PHASES=(preflight build-meshc database backend-verify build-backend isolated-database migrate
	pair-start submit-jobs freeze-owner promotion takeover zombie-writes kill-owner restart
	all-succeeded recovery-signals runtime-logs figures retain-bundle)

LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")/lib" && pwd)"
source "$LIB/rail.sh"
source "$LIB/rail-mesh.sh"
rail_args "$@"

JOBS_TOTAL=200
JOBS_SLOW="${JOBS_SLOW:-40}"
JOB_SLEEP_MS="${JOB_SLEEP_MS:-8000}"
RETRIES=20
unset PORT "${!MESH_@}"

PROJECT=reference-backend
rail_init backend "${PHASES[@]}"

BACKEND_DIR="$RAIL_REPO_ROOT/examples/$PROJECT"

preflight() {
	rail_require_tools go python3 curl psql
	python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null ||
		rail_drift "the IPv6 loopback ::1 is unavailable; the standby binds [::1]"
	[[ "$JOBS_SLOW" =~ ^[0-9]+$ && "$JOBS_SLOW" -ge 4 && "$JOBS_SLOW" -le $JOBS_TOTAL ]] ||
		rail_drift "JOBS_SLOW must be an integer from 4 to $JOBS_TOTAL"
	[[ "$JOB_SLEEP_MS" =~ ^[0-9]+$ && "$JOB_SLEEP_MS" -ge 4000 && "$JOB_SLEEP_MS" -le 30000 ]] ||
		rail_drift "JOB_SLEEP_MS must be an integer from 4000 to 30000"
	echo "repo: $RAIL_REPO_ROOT"
	echo "scratch: $RAIL_TMP"
}

backend_verify() {
	rail_cmd --env "DATABASE_URL=$(rail_get admin_url)" --env MESH_REQUIRE_POSTGRES=1 backend-verify-sh 600 \
		bash "$BACKEND_DIR/scripts/verify.sh"
	grep -qx 'reference-backend: verify ok' "$RAIL_VERIFY_DIR/backend-verify-sh.log" ||
		rail_drift "examples/$PROJECT/scripts/verify.sh did not print its ok line"
	if grep -E '^(--- SKIP|ok .*\[no tests to run\])' "$RAIL_VERIFY_DIR/backend-verify-sh.log"; then
		rail_drift "backend tests were skipped"
	fi
}

build_backend() {
	mkdir -p "$RAIL_TMP/bin"
	rail_cmd build-backend.go 600 rail__in_dir "$BACKEND_DIR" go build -o "$RAIL_TMP/bin/$PROJECT" . || return 1
	rail_set backend "$RAIL_TMP/bin/$PROJECT"
	echo "built $RAIL_TMP/bin/$PROJECT"
}

# db_json LABEL SQL runs SQL (one row, one json column) on the isolated
# database and keeps the value in <LABEL>.json.
db_json() {
	local label="$1" sql="$2"
	rail_psql "$label" "$(rail_get isolated_url)" 30 -tAc "$sql" || return 1
	sed -n '2p' "$RAIL_VERIFY_DIR/$label.log" >"$RAIL_VERIFY_DIR/$label.json"
}

migrate() {
	local m url
	m="$(rail_get meshc)"
	url="$(rail_get isolated_url)"
	rail_cmd --env "DATABASE_URL=$url" migrate-status-before 60 "$m" migrate "$BACKEND_DIR" status
	rail_cmd --env "DATABASE_URL=$url" migrate-up 60 "$m" migrate "$BACKEND_DIR" up
	rail_cmd --env "DATABASE_URL=$url" migrate-status-after 60 "$m" migrate "$BACKEND_DIR" status
	cat "$RAIL_VERIFY_DIR"/migrate-status-before.log "$RAIL_VERIFY_DIR"/migrate-up.log "$RAIL_VERIFY_DIR"/migrate-status-after.log
	grep -Eq 'pending.*create_jobs|create_jobs.*pending' "$RAIL_VERIFY_DIR/migrate-status-before.log" ||
		rail_drift "migrate status before up does not list create_jobs as pending"
	grep -Eq 'applied.*create_jobs|create_jobs.*applied' "$RAIL_VERIFY_DIR/migrate-status-after.log" ||
		rail_drift "migrate status after up does not list create_jobs as applied"
	db_json schema-check "select json_build_object('jobs', to_regclass('jobs') is not null, 'recoveries', to_regclass('job_recoveries') is not null)"
	rail_py "$RAIL_VERIFY_DIR/schema-check.json" <<'PY'
from rail_json import *
v = load(arg(1))
equal("jobs table", v["jobs"], True)
equal("job_recoveries table", v["recoveries"], True)
PY
}

choose_topology() {
	local port
	port="$(rail_free_port --dual-stack)"
	rail_set cluster_port "$port"
	rail_set primary "$PROJECT-primary@127.0.0.1:$port"
	rail_set standby "$PROJECT-standby@[::1]:$port"
	rail_set http.primary "$(rail_free_port)"
	rail_set http.standby "$(rail_free_port)"
	echo "cluster port $port"
}

# start_node ROLE LABEL starts the primary or the standby; the same ROLE
# always gets the same env and state dir, so a restart is a real restart.
start_node() {
	local role="$1" label="$2"
	mkdir -p "$RAIL_TMP/state-$role"
	rail_start_service "$label" "$RAIL_VERIFY_DIR/node-$label.log" \
		"DATABASE_URL=$(rail_get isolated_url)" "PORT=$(rail_get "http.$role")" \
		"MESH_CLUSTER_COOKIE=$(rail_get cookie)" "MESH_NODE_NAME=$(rail_get "$role")" \
		MESH_DISCOVERY_SEED=localhost "MESH_CLUSTER_PORT=$(rail_get cluster_port)" \
		"MESH_CONTINUITY_ROLE=$role" MESH_CONTINUITY_PROMOTION_EPOCH=0 \
		MESH_DISCOVERY_INTERVAL_MS=500 MESH_STARTUP_WORK_DELAY_MS=500 \
		"MESH_STATE_DIR=$RAIL_TMP/state-$role" \
		-- "$(rail_get backend)"
}

pair_start() {
	choose_topology
	rail_new_cookie
	start_node primary primary-run1
	start_node standby standby-run1
	rail_wait_health primary-run1 "http://127.0.0.1:$(rail_get http.primary)/health" 30
	rail_wait_health standby-run1 "http://127.0.0.1:$(rail_get http.standby)/health" 30
	rail_poll 30 0.25 "primary and standby to see each other at epoch 0" pair_converged
}

pair_converged() {
	rail_pair_status start <<'PY'
from rail_json import *
p, s, pn, sn = status_view(load(arg(1))), status_view(load(arg(2))), arg(3), arg(4)
for view, me, peer, role in ((p, pn, sn, "primary"), (s, sn, pn, "standby")):
    equal(f"{me} peer_nodes", view["peer_nodes"], [peer])
    equal(f"{me} cluster_role", view["cluster_role"], role)
    equal(f"{me} promotion_epoch", view["promotion_epoch"], 0)
    equal(f"{me} replication_health", view["replication_health"], "healthy")
PY
}

# submit_jobs POSTs the 200 jobs (alternating between the nodes, each with
# its own Idempotency-Key) and retries RETRIES of them with the same key.
submit_jobs() {
	python3 - "$RAIL_VERIFY_DIR/submitted.json" "http://127.0.0.1:$(rail_get http.primary)" \
		"http://127.0.0.1:$(rail_get http.standby)" "$JOBS_TOTAL" "$JOBS_SLOW" "$JOB_SLEEP_MS" "$RETRIES" <<'PY' || rail_drift "job submission failed (see submit-jobs.log)"
import json, sys, urllib.request, urllib.error
out, hp, hs = sys.argv[1], sys.argv[2], sys.argv[3]
total, slow, sleep_ms, retries = (int(x) for x in sys.argv[4:8])

def post(base, key, body):
    req = urllib.request.Request(base + "/jobs", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Idempotency-Key": key})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")

jobs = []
# Slow jobs are spread through the run so both nodes own some.
slow_at = set(range(0, total, total // slow)[:slow])
for i in range(total):
    base = hp if i % 2 == 0 else hs
    key = f"rail-job-{i:03d}"
    body = {"kind": "sleep", "payload": {"ms": sleep_ms}} if i in slow_at else {"kind": "echo", "payload": {"n": i}}
    code, resp = post(base, key, body)
    if code != 202 or resp.get("idempotent_replay") is not False:
        sys.exit(f"drift: POST {key} -> {code} {resp}")
    jobs.append({"key": key, "id": resp["id"], "slow": i in slow_at, "body": body, "ingress": base})
replays = []
for j in jobs[:retries]:
    base = hs if j["ingress"] == hp else hp  # retry through the other node
    code, resp = post(base, j["key"], j["body"])
    if code != 202 or resp.get("id") != j["id"] or resp.get("idempotent_replay") is not True:
        sys.exit(f"drift: retried POST {j['key']} -> {code} {resp}, want 202 with id {j['id']} replayed")
    replays.append({"key": j["key"], "id": resp["id"]})
json.dump({"jobs": jobs, "replays": replays}, open(out, "w"), indent=1)
print(f"{len(jobs)} jobs submitted ({sum(j['slow'] for j in jobs)} slow), {len(replays)} retried POSTs answered the same job")
PY
}

# The owner to freeze: the primary, once it runs at least one slow job.
primary_runs_slow() {
	db_json running-on-primary "select json_build_object('n', count(*)) from jobs
		where state = 'running' and kind = 'sleep' and execution_node = '$(rail_get primary)'" || return 1
	rail_py "$RAIL_VERIFY_DIR/running-on-primary.json" <<'PY' || return 1
from rail_json import *
n = load(arg(1))["n"]
expect(n >= 1, f"{n} slow jobs running on the primary")
print(f"{n} slow jobs running on the primary")
PY
}

freeze_owner() {
	rail_poll 20 0.2 "a slow job running on the primary" primary_runs_slow
	db_json frozen-jobs "select coalesce(json_agg(id::text), '[]') from jobs
		where state = 'running' and execution_node = '$(rail_get primary)'"
	kill -STOP "$(rail_get pid.primary-run1)"
	rail_set frozen 1
	echo "primary (pid $(rail_get pid.primary-run1)) frozen with SIGSTOP while running: $(cat "$RAIL_VERIFY_DIR/frozen-jobs.json")"
}

promotion() {
	rail_poll 30 0.25 "the standby to promote itself to primary at epoch 1" standby_promoted
}

standby_promoted() {
	rail_cluster status-standby-promoted status "$(rail_get standby)" || return 1
	rail_py "$RAIL_VERIFY_DIR/status-standby-promoted.json" <<'PY' || return 1
from rail_json import *
v = status_view(load(arg(1)))
equal("promoted cluster_role", v["cluster_role"], "primary")
equal("promoted promotion_epoch", v["promotion_epoch"], 1)
PY
}

# takeover: every job the frozen primary was running has been claimed again
# by the promoted node, at epoch 1.
takeover() {
	rail_poll 30 0.25 "the promoted node to take over the frozen primary's jobs" taken_over
}

taken_over() {
	db_json takeover-state "select coalesce(json_agg(json_build_object('id', id::text, 'state', state,
		'fence_epoch', fence_epoch, 'node', execution_node)), '[]') from jobs
		where id::text in (select json_array_elements_text('$(cat "$RAIL_VERIFY_DIR/frozen-jobs.json")'::json))" || return 1
	rail_py "$RAIL_VERIFY_DIR/takeover-state.json" "$(rail_get standby)" <<'PY' || return 1
from rail_json import *
rows, standby = load(arg(1)), arg(2)
expect(rows, "no frozen jobs found")
left = [r for r in rows if r["fence_epoch"] < 1]
expect(not left, f"{len(left)} of {len(rows)} frozen jobs not yet taken over at epoch 1")
for r in rows:
    expect(r["node"] == standby or r["state"] == "succeeded", f"job {r['id']} is held by {r['node']}")
print(f"{len(rows)} jobs taken over at epoch 1")
PY
}

zombie_writes() {
	kill -CONT "$(rail_get pid.primary-run1)"
	rail_set frozen 0
	echo "primary resumed with SIGCONT: its superseded attempts finish now"
	rail_poll 40 0.25 "the database to refuse the superseded attempts' writes" zombie_refused
}

zombie_refused() {
	db_json fenced-count "select json_build_object('refused', coalesce(sum(fenced_writes_refused), 0)) from jobs" || return 1
	rail_py "$RAIL_VERIFY_DIR/fenced-count.json" <<'PY' || return 1
from rail_json import *
n = load(arg(1))["refused"]
expect(n >= 1, f"fenced_writes_refused = {n}")
print(f"fenced writes refused: {n}")
PY
}

kill_owner() {
	local pid
	pid="$(rail_get pid.primary-run1)"
	rail_stop_service primary-run1 KILL
	rail_set kills $(($(rail_get kills) + 1))
	if rail__alive "$pid"; then rail_drift "primary pid $pid survived SIGKILL"; fi
	echo "old primary (pid $pid) killed with SIGKILL"
}

restart() {
	start_node primary primary-run2
	rail_wait_health primary-run2 "http://127.0.0.1:$(rail_get http.primary)/health" 30
	rail_poll 30 0.25 "the restarted node to rejoin as standby at epoch 1" rejoined
}

rejoined() {
	rail_pair_status rejoin <<'PY'
from rail_json import *
old, new, pn, sn = status_view(load(arg(1))), status_view(load(arg(2))), arg(3), arg(4)
equal("restarted node cluster_role", old["cluster_role"], "standby")
equal("restarted node promotion_epoch", old["promotion_epoch"], 1)
equal("restarted node peer_nodes", old["peer_nodes"], [sn])
equal("promoted node cluster_role", new["cluster_role"], "primary")
equal("promoted node promotion_epoch", new["promotion_epoch"], 1)
equal("promoted node peer_nodes", new["peer_nodes"], [pn])
PY
}

all_succeeded() {
	rail_poll 90 0.5 "all $JOBS_TOTAL jobs to succeed" jobs_done
	db_json final-jobs "select json_build_object(
		'rows', count(*),
		'succeeded', count(*) filter (where state = 'succeeded'),
		'completions_total', coalesce(sum(completions), 0),
		'completions_not_one', count(*) filter (where completions <> 1),
		'keys', count(distinct idempotency_key),
		'fenced_writes_refused', coalesce(sum(fenced_writes_refused), 0),
		'refused_jobs', count(*) filter (where fenced_writes_refused > 0),
		'retried_attempts', count(*) filter (where attempts > 1),
		'max_fence_epoch', coalesce(max(fence_epoch), 0),
		'ids', coalesce(json_agg(id::text), '[]')) from jobs"
	rail_py "$RAIL_VERIFY_DIR/final-jobs.json" "$RAIL_VERIFY_DIR/submitted.json" "$JOBS_TOTAL" <<'PY'
from rail_json import *
v, sub, total = load(arg(1)), load(arg(2)), int(arg(3))
equal("job rows (a retried POST must not create a second job)", v["rows"], total)
equal("distinct idempotency keys", v["keys"], total)
equal("succeeded jobs", v["succeeded"], total)
equal("jobs whose completions is not exactly 1", v["completions_not_one"], 0)
equal("completions in all", v["completions_total"], total)
expect(v["fenced_writes_refused"] >= 1, f"fenced_writes_refused {v['fenced_writes_refused']}")
equal("highest fence epoch", v["max_fence_epoch"], 1)
equal("stored ids", sorted(v["ids"]), sorted(j["id"] for j in sub["jobs"]))
PY
}

jobs_done() {
	db_json progress "select json_build_object('succeeded', count(*) filter (where state = 'succeeded'),
		'failed', count(*) filter (where state = 'failed'), 'rows', count(*)) from jobs" || return 1
	rail_py "$RAIL_VERIFY_DIR/progress.json" "$JOBS_TOTAL" <<'PY' || return 1
from rail_json import *
v, total = load(arg(1)), int(arg(2))
if v["failed"]:
    raise Drift(f"{v['failed']} jobs failed")
expect(v["succeeded"] == total, f"{v['succeeded']} of {v['rows']} jobs succeeded")
PY
}

recovery_signals() {
	local hp hs
	hp="http://127.0.0.1:$(rail_get http.primary)"
	hs="http://127.0.0.1:$(rail_get http.standby)"
	rail_http health-restarted GET "$hp/health"
	rail_http health-promoted GET "$hs/health"
	db_json recoveries "select json_build_object('rows', count(*), 'jobs', count(distinct job_id),
		'from_primary', count(*) filter (where previous_node = '$(rail_get primary)' and previous_epoch = 0 and epoch = 1),
		'sample', (select job_id::text from job_recoveries where epoch = 1 order by id limit 1)) from job_recoveries"
	rail_set sample_job "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sample"] or "")' "$RAIL_VERIFY_DIR/recoveries.json")"
	[[ -n "$(rail_get sample_job)" ]] || rail_drift "no take-over at epoch 1 in job_recoveries"
	rail_cluster continuity-sample continuity "$(rail_get standby)" "$(rail_get sample_job)"
	rail_py "$RAIL_VERIFY_DIR/health-restarted" "$RAIL_VERIFY_DIR/health-promoted" "$RAIL_VERIFY_DIR/recoveries.json" \
		"$RAIL_VERIFY_DIR/continuity-sample.json" "$(rail_get primary)" "$(rail_get standby)" <<'PY'
from rail_json import *
rec, primary, standby = load(arg(3)), arg(5), arg(6)
signals = ("restart_count", "recovered_jobs", "last_recovery_at", "last_recovery_job_id", "last_exit_reason", "fenced_writes_refused")
bodies = []
for prefix, node, role in ((arg(1), primary, "standby"), (arg(2), standby, "primary")):
    code, _, b = http(prefix)
    equal(f"GET /health on {node}", code, 200)
    equal(f"{node} status", b.get("status"), "ok")
    equal(f"{node} cluster_role", b.get("cluster_role"), role)
    equal(f"{node} promotion_epoch", b.get("promotion_epoch"), 1)
    expect(b.get("restart_count", 0) >= 1, f"{node} restart_count {b.get('restart_count')}")
    expect(b.get("recovered_jobs", 0) >= 1, f"{node} recovered_jobs {b.get('recovered_jobs')}")
    expect(b.get("fenced_writes_refused", 0) >= 1, f"{node} fenced_writes_refused {b.get('fenced_writes_refused')}")
    expect(b.get("last_recovery_at"), f"{node} last_recovery_at is empty")
    expect(b.get("last_recovery_job_id"), f"{node} last_recovery_job_id is empty")
    expect(str(b.get("last_exit_reason", "")).startswith("owner_lost:"), f"{node} last_exit_reason {b.get('last_exit_reason')!r}")
    bodies.append(b)
for k in signals:
    equal(f"{k} on both nodes", bodies[0].get(k), bodies[1].get(k))
equal("restart_count against job_recoveries", bodies[0]["restart_count"], rec["rows"])
expect(rec["from_primary"] >= 1, "no take-over of an epoch-0 attempt of the old primary at epoch 1")
r = load(arg(4))["record"]
equal("recovered job record phase", r.get("phase"), "completed")
equal("recovered job record result", r.get("result"), "succeeded")
equal("recovered job record promotion_epoch", r.get("promotion_epoch"), 1)
equal("recovered job record execution_node", r.get("execution_node"), standby)
equal("recovered job record runtime name", r.get("declared_handler_runtime_name"), "work.RunJob")
print("recovery signals:", {k: bodies[1].get(k) for k in signals})
PY
}

runtime_logs() {
	rail_stop_service primary-run2 TERM
	rail_stop_service standby-run1 TERM
	local f
	for f in "$RAIL_VERIFY_DIR"/node-*.log; do
		# Process substitution, not a pipe: with pipefail, grep -q leaving
		# early would fail the pipeline and hide the hit.
		if grep -q '<redacted:' <(tail -n +2 "$f"); then rail_drift "a node printed DATABASE_URL or the cookie (see $f)"; fi
	done
	grep -q 'fenced write refused' "$RAIL_VERIFY_DIR/node-primary-run1.log" ||
		rail_drift "the old primary's log lacks its refused fenced write"
	# The resumed old primary meets the higher epoch before it is killed (and
	# persists it), or, at the latest, after its restart.
	grep -q 'transition=fenced_rejoin' "$RAIL_VERIFY_DIR/node-primary-run1.log" "$RAIL_VERIFY_DIR/node-primary-run2.log" ||
		rail_drift "neither run of the old primary logged transition=fenced_rejoin"
	grep -E "transition=completed .*execution_node=" "$RAIL_VERIFY_DIR/node-primary-run2.log" >"$RAIL_TMP/run2-completed" || true
	if grep -qF "execution_node=$(rail_get primary) " "$RAIL_TMP/run2-completed"; then
		rail_drift "the restarted old primary completed work"
	fi
	local t
	for t in automatic_promotion automatic_recovery; do
		grep -q "transition=$t" "$RAIL_VERIFY_DIR/node-standby-run1.log" || rail_drift "standby log lacks transition=$t"
	done
	rail_assert_no_secrets "$RAIL_VERIFY_DIR"
}

figures() {
	rail_py "$RAIL_VERIFY_DIR/final-jobs.json" "$RAIL_VERIFY_DIR/health-promoted.body" "$RAIL_VERIFY_DIR/submitted.json" \
		"$RAIL_VERIFY_DIR/figures.json" "$JOB_SLEEP_MS" "$(rail_get kills)" <<'PY'
from rail_json import *
v, h, sub = load(arg(1)), load(arg(2)), load(arg(3))
fig = {
    "jobs": v["rows"],
    "slow_jobs": sum(1 for j in sub["jobs"] if j["slow"]),
    "slow_job_ms": int(arg(5)),
    "succeeded": v["succeeded"],
    "kills": int(arg(6)),
    "recovered": h["recovered_jobs"],
    "restart_count": h["restart_count"],
    "duplicates": v["completions_total"] - v["rows"],
    "retried_posts": len(sub["replays"]),
    "fenced_writes_refused": v["fenced_writes_refused"],
}
write_json(arg(4), fig)
PY
}

retain_bundle() {
	local b
	b="$(rail_bundle_begin retained-backend)"
	mkdir -p "$b/evidence"
	cp "${BASH_SOURCE[0]}" "$b/verify-backend.sh"
	cp "$RAIL_VERIFY_DIR"/*.json "$RAIL_VERIFY_DIR"/*.status "$RAIL_VERIFY_DIR"/*.body "$RAIL_VERIFY_DIR"/node-*.log "$b/evidence/"
	rail_bundle_seal
}

rail_phase preflight 30 preflight
rail_phase build-meshc 600 rail_build_meshc
rail_phase database 120 rail_pg_use_env_or_throwaway
rail_phase backend-verify 600 backend_verify
rail_phase build-backend 600 build_backend
rail_phase isolated-database 60 rail_pg_create_isolated mesh_rail_backend
rail_phase migrate 120 migrate
rail_phase pair-start 120 pair_start
rail_phase submit-jobs 120 submit_jobs
rail_phase freeze-owner 60 freeze_owner
rail_phase promotion 45 promotion
rail_phase takeover 45 takeover
rail_phase zombie-writes 60 zombie_writes
rail_phase kill-owner 30 kill_owner
rail_phase restart 90 restart
rail_phase all-succeeded 120 all_succeeded
rail_phase recovery-signals 60 recovery_signals
rail_phase runtime-logs 60 runtime_logs
rail_phase figures 30 figures
rail_phase retain-bundle 60 retain_bundle
python3 - "$RAIL_VERIFY_DIR/figures.json" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
print("verify-backend figures: " + " ".join(f"{k}={v}" for k, v in f.items()))
PY
rail_finish
