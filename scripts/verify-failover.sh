#!/usr/bin/env bash
# verify-failover.sh — proof rail: two nodes from the staged bundle survive the
# loss of the primary while clustered startup work is in flight.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: bash scripts/verify-failover.sh [--help | --phases]

  --phases  print the phase names, in order, and exit (touches nothing)

Proves:
  First replays scripts/verify-staged-deploy.sh (nested; its verify files are
  kept under verify/staged-deploy-verify/). Then, from the bundle that rail
  staged, on one isolated database:
    1. a primary (todo-postgres-primary@127.0.0.1:P) and a standby
       (todo-postgres-standby@[::1]:P) form a cluster: each sees the other,
       roles primary/standby, epoch 0, health healthy;
    2. startup::work.SyncTodos is owned by the primary, pending inside a 20 s
       dispatch window and mirrored on the standby (one dispatch window, no
       completion yet);
    3. a todo is created and listed through the primary;
    4. the primary is SIGKILLed; the standby promotes itself to primary at
       epoch 1 (automatic_promotion, peer_lost / disconnected_node, previous
       epoch 0), alone in its membership;
    5. recovery: automatic_recovery and recovery_rollover re-run the startup
       work under a new attempt id that completes on the standby, after which
       its replication health is no longer degraded;
    6. full CRUD of the todo on the promoted node, ending in 404 after delete;
    7. the old primary restarted with its original env (role primary, epoch 0,
       same state dir) is fenced: fenced_rejoin, role standby at epoch 1;
    8. both nodes' records for the startup key agree (failover attempt, owner
       and execution on the promoted node); the logs show no duplicate
       completion by the old primary.

Inputs:
  DATABASE_URL  optional admin connection (postgres:// or postgresql://); both
                this rail and the nested one create and drop their own
                databases from it. Unset: one throwaway PostgreSQL (initdb +
                pg_ctl, 127.0.0.1 only, run as postgres when root) serves both
                and is removed on exit.
  TMPDIR        scratch space for meshc, the copied bundle, node state dirs
                (must be outside the repo).
  Tools: bash, coreutils, go, python3, curl, psql (+ initdb/pg_ctl when
  DATABASE_URL is unset), an IPv6 loopback (::1). MESH_*, PORT and TODO_* from
  your shell are ignored.

Never:
  - writes DATABASE_URL or the cluster cookie to any retained file (redacted,
    then scanned with grep -F; a hit fails the run);
  - passes DATABASE_URL or the cookie on a command line;
  - leaves a node, a database or a temp dir behind (all killed/removed on
    exit, also on failure or Ctrl-C);
  - changes the product: it runs the staged binary exactly as a user would,
    with the documented MESH_* environment.

Artifacts:
  .tmp/failover/verify/{status.txt,current-phase.txt,phase-report.txt,
  full-contract.log,<phase>.log,<query>.json,node-*.log,...}; a dated proof
  bundle under .tmp/failover/proof-bundles/ named by
  verify/latest-proof-bundle.txt (a failed run keeps the last good one).
EOF
}

# The phases, in order; rail_finish requires a passed line for each.
PHASES=(preflight build-meshc database staged-deploy-rail bundle-copy isolated-database apply-sql
	pair-start startup-pending pre-kill-writes kill-primary promotion recovery promoted-crud
	fenced-rejoin records-agree runtime-logs retain-bundle)

LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")/lib" && pwd)"
source "$LIB/rail.sh"
source "$LIB/rail-mesh.sh"
rail_args "$@"

unset PORT "${!MESH_@}" "${!TODO_@}"

PROJECT=todo-postgres
STARTUP_RUNTIME=work.SyncTodos
STARTUP_KEY="startup::$STARTUP_RUNTIME"
LIST_RUNTIME=api.Todos.List
WINDOW_MS=20000 # long enough that the kill lands while the startup work is pending

rail_init failover "${PHASES[@]}"

preflight() {
	rail_require_tools go python3 curl psql
	python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null ||
		rail_drift "the IPv6 loopback ::1 is unavailable; the standby binds [::1]"
	echo "repo: $RAIL_REPO_ROOT"
	echo "scratch: $RAIL_TMP"
}

# The nested rail gets this run's meshc and database, and the same artifact
# root, so both rails' artifacts sit side by side under .tmp/.
staged_deploy_rail() {
	local out="$RAIL_VERIFY_DIR/staged-deploy-rail.output" rc
	rail__errexit_save
	MESHC_BIN="$(rail_get meshc)" DATABASE_URL="$(rail_get admin_url)" \
		bash "$RAIL_REPO_ROOT/scripts/verify-staged-deploy.sh" >"$out" 2>&1
	rc=$?
	rail__errexit_restore
	local nested="${RAIL_ARTIFACT_ROOT:-$RAIL_REPO_ROOT/.tmp}/staged-deploy/verify"
	mkdir -p "$RAIL_VERIFY_DIR/staged-deploy-verify"
	cp "$nested"/*.txt "$nested"/*.log "$RAIL_VERIFY_DIR/staged-deploy-verify/" 2>/dev/null || true
	cat "$out"
	if [[ $rc -ne 0 ]]; then
		local flog
		flog="$(sed -n 's/^failing log: //p' "$out" | tail -n 1)"
		if [[ -n "$flog" && -f "$RAIL_VERIFY_DIR/staged-deploy-verify/$(basename "$flog")" ]]; then
			rail_set failing_log "$RAIL_VERIFY_DIR/staged-deploy-verify/$(basename "$flog")"
		fi
		rail_drift "nested verify-staged-deploy.sh failed at phase $(cat "$nested/current-phase.txt" 2>/dev/null): $(sed -n 's/^verification drift: //p' "$out" | tail -n 1)"
	fi
	grep -qx 'verify-staged-deploy: ok' "$out" || rail_drift "nested rail did not print verify-staged-deploy: ok"
	local pointer
	pointer="$(cat "$nested/latest-proof-bundle.txt")"
	[[ -d "$pointer/staged-bundle" ]] || rail_drift "nested proof bundle $pointer has no staged-bundle/"
	rail_set nested_bundle "$pointer"
	echo "nested proof bundle: $pointer"
}

# Copy the staged bundle out of the repo and check it against the nested
# rail's manifest, so the nodes run exactly what was staged and proven.
bundle_copy() {
	local src dst
	src="$(rail_get nested_bundle)/staged-bundle"
	dst="$RAIL_TMP/bundle"
	mkdir -p "$dst"
	cp -p "$src"/* "$dst/"
	local f want got
	while IFS=$'\t' read -r f _ want; do
		got="$(sha256sum "$dst/$f" | cut -d' ' -f1)"
		[[ "$got" == "$want" ]] || rail_drift "copied bundle file $f differs from the staged one"
	done <"$(rail_get nested_bundle)/evidence/staged-bundle.manifest.tsv"
	[[ -x "$dst/$PROJECT" ]] || rail_drift "copied binary is not executable"
	rail_set bundle "$dst"
	ls -l "$dst"
}

apply_sql() {
	rail_cmd --env "DATABASE_URL=$(rail_get isolated_url)" apply-deploy-migrations 120 \
		rail__in_dir "$(rail_get bundle)" bash apply-deploy-migrations.sh "$PROJECT.up.sql"
}

# Node names share one cluster port on both loopbacks. The port is chosen so
# that the runtime's placement makes the primary own the startup work (the
# same rule as internal/continuity/placement.go); pair_start then checks the
# actual record agrees.
choose_topology() {
	local port primary standby owner i
	for i in $(seq 1 64); do
		port="$(rail_free_port --dual-stack)"
		primary="todo-postgres-primary@127.0.0.1:$port"
		standby="todo-postgres-standby@[::1]:$port"
		owner="$(rail_placement_owner "$STARTUP_KEY" "$primary" "$standby")"
		if [[ "$owner" == "$primary" ]]; then
			rail_set cluster_port "$port"
			rail_set primary "$primary"
			rail_set standby "$standby"
			rail_set http.primary "$(rail_free_port)"
			rail_set http.standby "$(rail_free_port)"
			echo "cluster port $port: owner of $STARTUP_KEY is $primary"
			return 0
		fi
	done
	rail_drift "no free cluster port in 64 tries makes the primary own $STARTUP_KEY"
}

# start_node ROLE LABEL starts the primary or the standby with its env; the
# same ROLE always gets the same env (and state dir), so a restart is a real
# restart with the original configuration.
start_node() {
	local role="$1" label="$2" name
	name="$(rail_get "$role")"
	mkdir -p "$RAIL_TMP/state-$role"
	rail_start_service "$label" "$RAIL_VERIFY_DIR/node-$label.log" \
		"DATABASE_URL=$(rail_get isolated_url)" "PORT=$(rail_get "http.$role")" \
		TODO_RATE_LIMIT_WINDOW_SECONDS=60 TODO_RATE_LIMIT_MAX_REQUESTS=20 \
		"MESH_CLUSTER_COOKIE=$(rail_get cookie)" "MESH_NODE_NAME=$name" \
		MESH_DISCOVERY_SEED=localhost "MESH_CLUSTER_PORT=$(rail_get cluster_port)" \
		"MESH_CONTINUITY_ROLE=$role" MESH_CONTINUITY_PROMOTION_EPOCH=0 \
		MESH_DISCOVERY_INTERVAL_MS=500 "MESH_STARTUP_WORK_DELAY_MS=$WINDOW_MS" \
		"MESH_STATE_DIR=$RAIL_TMP/state-$role" \
		-- "$(rail_get bundle)/$PROJECT"
	rail_set "label.$role" "$label"
}

pair_start() {
	choose_topology
	rail_new_cookie
	start_node primary primary-run1
	start_node standby standby-run1
	rail_wait_health primary-run1 "http://127.0.0.1:$(rail_get http.primary)/health" 30
	rail_wait_health standby-run1 "http://127.0.0.1:$(rail_get http.standby)/health" 30
	rail_poll 30 0.25 "primary and standby to see each other" pair_converged
}

pair_converged() {
	rail_pair_status prekill <<'PY'
from rail_json import *
p, s, pn, sn = status_view(load(arg(1))), status_view(load(arg(2))), arg(3), arg(4)
for view, me, peer, role in ((p, pn, sn, "primary"), (s, sn, pn, "standby")):
    equal(f"{me} local_node", view["local_node"], me)
    equal(f"{me} peer_nodes", view["peer_nodes"], [peer])
    equal(f"{me} nodes", view["nodes"], sorted([me, peer]))
    equal(f"{me} cluster_role", view["cluster_role"], role)
    equal(f"{me} promotion_epoch", view["promotion_epoch"], 0)
    equal(f"{me} replication_health", view["replication_health"], "healthy")
PY
}

startup_pending() {
	rail_poll 30 0.25 "$STARTUP_KEY pending on the primary and mirrored on the standby" startup_mirrored
	rail_cluster diagnostics-primary-prekill diagnostics "$(rail_get primary)"
	rail_cluster diagnostics-standby-prekill diagnostics "$(rail_get standby)"
	rail_py "$RAIL_VERIFY_DIR/diagnostics-primary-prekill.json" "$RAIL_VERIFY_DIR/diagnostics-standby-prekill.json" "$STARTUP_KEY" "$WINDOW_MS" <<'PY'
from rail_json import *
dp, ds, key, window = load(arg(1)), load(arg(2)), arg(3), arg(4)
both = entries(dp) + entries(ds)
for bad in ("startup_completed", "startup_rejected", "startup_convergence_timeout"):
    expect(not [e for e in both if e.get("transition") == bad and e.get("request_key") == key],
           f"{bad} for {key} before the kill: the work was not pending inside the dispatch window")
windows = [e for e in both if e.get("transition") == "startup_dispatch_window" and e.get("request_key") == key]
equal("startup_dispatch_window entries for " + key, len(windows), 1)
equal("startup_dispatch_window pending_window_ms", meta(windows[0]).get("pending_window_ms"), window)
expect([e for e in both if e.get("transition") == "startup_trigger" and e.get("request_key") == key],
       "no startup_trigger for " + key)
for d in (dp, ds):
    equal("diagnostics truncated", d.get("truncated"), False)
PY
}

startup_mirrored() {
	local p s
	p="$(rail_get primary)"
	s="$(rail_get standby)"
	rail_cluster continuity-primary-prekill continuity "$p" || return 1
	rail_cluster continuity-standby-prekill continuity "$s" || return 1
	rail_py "$RAIL_VERIFY_DIR/continuity-primary-prekill.json" "$RAIL_VERIFY_DIR/continuity-standby-prekill.json" \
		"$p" "$s" "$STARTUP_KEY" "$RAIL_TMP/state/initial_attempt" <<'PY' || return 1
from rail_json import *
lp, ls, pn, sn, key = load(arg(1)), load(arg(2)), arg(3), arg(4), arg(5)
rp, rs = record(lp, key), record(ls, key)
for r, role in ((rp, "primary"), (rs, "standby")):
    where = f"{key} on the {role}"
    if r.get("phase") == "completed":
        raise Drift(f"{where} completed before the kill: the dispatch window was too short")
    for field, want in [("phase", "submitted"), ("result", "pending"), ("owner_node", pn), ("replica_node", sn),
                        ("replication_count", 2), ("cluster_role", role), ("promotion_epoch", 0),
                        ("execution_node", ""), ("error", "")]:
        equal(f"{where}: {field}", r.get(field), want)
expect(rp.get("replica_status") in ("preparing", "mirrored"), f"primary replica_status {rp.get('replica_status')!r}")
equal(f"{key} on the standby: replica_status", rs.get("replica_status"), "mirrored")
equal("attempt ids on both nodes", rs.get("attempt_id"), rp.get("attempt_id"))
expect(rp.get("attempt_id", "").startswith("attempt-"), f"attempt_id {rp.get('attempt_id')!r}")
equal("records on the primary before any request", len(records(lp)), 1)
equal("records on the standby before any request", len(records(ls)), 1)
open(arg(6), "w").write(rp["attempt_id"])
PY
}

pre_kill_writes() {
	local hp p
	hp="http://127.0.0.1:$(rail_get http.primary)"
	p="$(rail_get primary)"
	rail_http create-todo POST "$hp/todos" '{"title":"failover smoke todo"}'
	rail_http list-prekill GET "$hp/todos"
	rail_cluster continuity-primary-after-list continuity "$p"
	rail_py "$RAIL_VERIFY_DIR/create-todo" "$RAIL_VERIFY_DIR/list-prekill" "$RAIL_VERIFY_DIR/continuity-primary-after-list.json" \
		"$LIST_RUNTIME" "$RAIL_TMP/state/todo_id" <<'PY'
from rail_json import *
code, _, todo = http(arg(1))
equal("POST /todos status", code, 201)
equal("created todo title", todo.get("title"), "failover smoke todo")
equal("created todo completed", todo.get("completed"), False)
expect(todo.get("id"), "created todo has no id")
code, headers, listing = http(arg(2))
equal("GET /todos status", code, 200)
expect(any(t.get("id") == todo["id"] for t in listing), "GET /todos on the primary lacks the new todo")
key = headers.get("x-mesh-continuity-request-key", "")
runtime = arg(4)
expect(key.startswith(f"http-route::{runtime}::"), f"list request key {key!r}")
r = record(load(arg(3)), key)
equal("list route record phase", r.get("phase"), "completed")
equal("list route record replication_count", r.get("replication_count"), 1)
open(arg(5), "w").write(str(todo["id"]))
PY
	echo "todo $(rail_get todo_id) created on the primary"
}

kill_primary() {
	local p pid
	p="$(rail_get primary)"
	# Last look before the kill: the startup work must still be pending.
	rail_cluster continuity-primary-at-kill continuity "$p" "$STARTUP_KEY"
	rail_py "$RAIL_VERIFY_DIR/continuity-primary-at-kill.json" <<'PY'
from rail_json import *
r = load(arg(1))["record"]
equal("startup record phase at the kill", r.get("phase"), "submitted")
PY
	pid="$(rail_get pid.primary-run1)"
	rail_stop_service primary-run1 KILL
	if rail__alive "$pid"; then rail_drift "primary pid $pid survived SIGKILL"; fi
	echo "primary $p (pid $pid) killed with SIGKILL"
}

promotion() {
	rail_poll 20 0.25 "the standby to promote itself to primary at epoch 1" standby_promoted
	rail_cluster diagnostics-standby-promotion diagnostics "$(rail_get standby)"
	rail_py "$RAIL_VERIFY_DIR/diagnostics-standby-promotion.json" "$(rail_get primary)" <<'PY'
from rail_json import *
d, primary = load(arg(1)), arg(2)
promos = entries(d, "automatic_promotion")
expect(promos, "standby diagnostics lack automatic_promotion")
e = promos[-1]
equal("automatic_promotion cluster_role", e.get("cluster_role"), "primary")
equal("automatic_promotion promotion_epoch", e.get("promotion_epoch"), 1)
m = meta(e)
expect(e.get("reason") == f"peer_lost:{primary}" or m.get("disconnected_node") == primary,
       f"automatic_promotion names neither peer_lost:{primary} nor disconnected_node={primary}: {e!r}")
equal("automatic_promotion previous_epoch", m.get("previous_epoch"), "0")
PY
}

standby_promoted() {
	local s
	s="$(rail_get standby)"
	rail_cluster status-standby-postkill status "$s" || return 1
	rail_py "$RAIL_VERIFY_DIR/status-standby-postkill.json" "$s" <<'PY' || return 1
from rail_json import *
v, me = status_view(load(arg(1))), arg(2)
equal("promoted local_node", v["local_node"], me)
equal("promoted nodes", v["nodes"], [me])
equal("promoted peer_nodes", v["peer_nodes"], [])
equal("promoted cluster_role", v["cluster_role"], "primary")
equal("promoted promotion_epoch", v["promotion_epoch"], 1)
# Until recovery has re-run the orphaned work, "degraded" is the honest
# health; the recovery phase requires it to clear.
expect(v["replication_health"] in ("unavailable", "local_only", "healthy", "degraded"),
       f"replication_health {v['replication_health']!r}")
PY
}

recovery() {
	rail_poll 45 0.25 "automatic_recovery of $STARTUP_KEY on the promoted standby" recovery_seen
	rail_poll 45 0.25 "$STARTUP_KEY to complete on the promoted standby under the failover attempt" recovery_completed
	rail_poll 20 0.25 "the promoted node's replication health to leave degraded" recovered_health
}

recovered_health() {
	rail_cluster status-standby-recovered status "$(rail_get standby)" || return 1
	rail_py "$RAIL_VERIFY_DIR/status-standby-recovered.json" <<'PY' || return 1
from rail_json import *
v = status_view(load(arg(1)))
equal("promoted cluster_role after recovery", v["cluster_role"], "primary")
equal("promoted promotion_epoch after recovery", v["promotion_epoch"], 1)
expect(v["replication_health"] in ("unavailable", "local_only", "healthy"),
       f"replication_health after recovery {v['replication_health']!r}")
PY
}

recovery_seen() {
	local s
	s="$(rail_get standby)"
	rail_cluster diagnostics-standby-recovery diagnostics "$s" || return 1
	rail_py "$RAIL_VERIFY_DIR/diagnostics-standby-recovery.json" "$s" "$STARTUP_KEY" "$STARTUP_RUNTIME" \
		"$(rail_get initial_attempt)" "$RAIL_TMP/state/failover_attempt" <<'PY' || return 1
from rail_json import *
d, standby, key, runtime, initial = load(arg(1)), arg(2), arg(3), arg(4), arg(5)
rec = entries(d, "automatic_recovery", key)
expect(rec, f"no automatic_recovery for {key} yet")
e = rec[-1]
m = meta(e)
equal("automatic_recovery previous_attempt_id", m.get("previous_attempt_id"), initial)
equal("automatic_recovery runtime_name", m.get("runtime_name"), runtime)
failover = e.get("attempt_id", "")
expect(failover.startswith("attempt-") and failover != initial,
       f"automatic_recovery attempt_id {failover!r} is not a new attempt (initial {initial})")
roll = [x for x in entries(d, "recovery_rollover", key) if x.get("attempt_id") == failover]
expect(roll, f"no recovery_rollover for {key} with attempt_id {failover}")
x = roll[-1]
equal("recovery_rollover owner_node", x.get("owner_node"), standby)
equal("recovery_rollover cluster_role", x.get("cluster_role"), "primary")
equal("recovery_rollover promotion_epoch", x.get("promotion_epoch"), 1)
equal("recovery_rollover previous_attempt_id", meta(x).get("previous_attempt_id"), initial)
open(arg(6), "w").write(failover)
PY
}

recovery_completed() {
	local s
	s="$(rail_get standby)"
	rail_cluster continuity-standby-recovered continuity "$s" "$STARTUP_KEY" || return 1
	rail_py "$RAIL_VERIFY_DIR/continuity-standby-recovered.json" "$s" "$(rail_get failover_attempt)" <<'PY' || return 1
from rail_json import *
r, standby, failover = load(arg(1))["record"], arg(2), arg(3)
for field, want in [("phase", "completed"), ("result", "succeeded"), ("attempt_id", failover),
                    ("owner_node", standby), ("execution_node", standby), ("replica_node", ""),
                    ("cluster_role", "primary"), ("promotion_epoch", 1), ("error", "")]:
    equal(f"recovered record {field}", r.get(field), want)
PY
}

promoted_crud() {
	local hs id
	hs="http://127.0.0.1:$(rail_get http.standby)"
	id="$(rail_get todo_id)"
	rail_http promoted-get GET "$hs/todos/$id"
	rail_http promoted-put PUT "$hs/todos/$id"
	rail_http promoted-get-after-put GET "$hs/todos/$id"
	rail_http promoted-delete DELETE "$hs/todos/$id"
	rail_http promoted-get-after-delete GET "$hs/todos/$id"
	rail_py "$RAIL_VERIFY_DIR/promoted" "$id" <<'PY'
from rail_json import *
p, id = arg(1), arg(2)
code, _, t = http(p + "-get")
equal("GET /todos/{id} on the promoted node", code, 200)
equal("todo title", t.get("title"), "failover smoke todo")
equal("todo completed before PUT", t.get("completed"), False)
code, _, t = http(p + "-put")
equal("PUT /todos/{id} status", code, 200)
equal("completed after PUT", t.get("completed"), True)
code, _, t = http(p + "-get-after-put")
equal("GET after PUT status", code, 200)
equal("GET after PUT completed", t.get("completed"), True)
code, _, t = http(p + "-delete")
equal("DELETE status", code, 200)
equal("DELETE body", t, {"status": "deleted", "id": id})
code, _, t = http(p + "-get-after-delete")
equal("GET after DELETE status", code, 404)
equal("GET after DELETE body", t, {"error": "todo not found"})
PY
}

fenced_rejoin() {
	start_node primary primary-run2
	rail_wait_health primary-run2 "http://127.0.0.1:$(rail_get http.primary)/health" 30
	rail_poll 30 0.25 "the old primary to rejoin as standby at epoch 1" rejoined
	rail_poll 20 0.25 "fenced_rejoin in the old primary's diagnostics" fenced_seen
}

rejoined() {
	rail_pair_status rejoin <<'PY'
from rail_json import *
old, new, pn, sn = status_view(load(arg(1))), status_view(load(arg(2))), arg(3), arg(4)
equal("old primary cluster_role", old["cluster_role"], "standby")
equal("old primary promotion_epoch", old["promotion_epoch"], 1)
equal("old primary peer_nodes", old["peer_nodes"], [sn])
equal("old primary nodes", old["nodes"], sorted([pn, sn]))
expect(old["replication_health"] in ("healthy", "local_only"), f"old primary health {old['replication_health']!r}")
equal("promoted node cluster_role", new["cluster_role"], "primary")
equal("promoted node promotion_epoch", new["promotion_epoch"], 1)
equal("promoted node peer_nodes", new["peer_nodes"], [pn])
expect(new["replication_health"] in ("unavailable", "local_only", "healthy"), f"promoted health {new['replication_health']!r}")
PY
}

fenced_seen() {
	rail_cluster diagnostics-primary-rejoin diagnostics "$(rail_get primary)" || return 1
	rail_py "$RAIL_VERIFY_DIR/diagnostics-primary-rejoin.json" "$STARTUP_KEY" "$(rail_get failover_attempt)" "$(rail_get standby)" <<'PY' || return 1
from rail_json import *
d, key, failover, standby = load(arg(1)), arg(2), arg(3), arg(4)
# The runtime fences once, on the first higher-epoch record it merges; which
# record that is depends on snapshot order. When it is the startup record, it
# must carry the failover attempt.
fenced = entries(d, "fenced_rejoin")
expect(fenced, "old primary diagnostics lack fenced_rejoin")
e = fenced[0]
if e.get("request_key") == key:
    equal("fenced_rejoin attempt_id", e.get("attempt_id"), failover)
if "fenced_by" in meta(e):
    equal("fenced_rejoin fenced_by", meta(e)["fenced_by"], standby)
equal("fenced_rejoin cluster_role", e.get("cluster_role"), "standby")
equal("fenced_rejoin promotion_epoch", e.get("promotion_epoch"), 1)
m = meta(e)
equal("fenced_rejoin previous_role", m.get("previous_role"), "primary")
equal("fenced_rejoin previous_epoch", m.get("previous_epoch"), "0")
PY
}

records_agree() {
	rail_poll 20 0.25 "both nodes to agree on $STARTUP_KEY" records_agree_once
}

records_agree_once() {
	local p s
	p="$(rail_get primary)"
	s="$(rail_get standby)"
	rail_cluster continuity-primary-final continuity "$p" "$STARTUP_KEY" || return 1
	rail_cluster continuity-standby-final continuity "$s" "$STARTUP_KEY" || return 1
	rail_py "$RAIL_VERIFY_DIR/continuity-primary-final.json" "$RAIL_VERIFY_DIR/continuity-standby-final.json" \
		"$s" "$(rail_get failover_attempt)" <<'PY' || return 1
from rail_json import *
old, new, standby, failover = load(arg(1))["record"], load(arg(2))["record"], arg(3), arg(4)
for r, role, where in ((old, "standby", "old primary"), (new, "primary", "promoted node")):
    for field, want in [("phase", "completed"), ("result", "succeeded"), ("attempt_id", failover),
                        ("owner_node", standby), ("execution_node", standby), ("replica_node", ""),
                        ("cluster_role", role), ("promotion_epoch", 1), ("error", "")]:
        equal(f"{where} record {field}", r.get(field), want)
for field in ("request_key", "payload_hash", "attempt_id", "phase", "result", "owner_node", "execution_node"):
    equal(f"records disagree on {field}", old.get(field), new.get(field))
PY
}

runtime_logs() {
	local p1 s1 p2 initial failover
	p1="$(rail_get log.primary-run1)"
	s1="$(rail_get log.standby-run1)"
	p2="$(rail_get log.primary-run2)"
	initial="$(rail_get initial_attempt)"
	failover="$(rail_get failover_attempt)"
	rail_stop_service primary-run2 TERM
	rail_stop_service standby-run1 TERM
	local f
	for f in "$p1" "$s1" "$p2"; do
		if tail -n +2 "$f" | grep '<redacted:' >/dev/null; then rail_drift "a node printed DATABASE_URL or the cookie (see $f)"; fi
	done
	grep -q "transition=startup_dispatch_window.*pending_window_ms=$WINDOW_MS" "$p1" ||
		rail_drift "primary-run1 log lacks the startup_dispatch_window line with pending_window_ms=$WINDOW_MS"
	if grep -q 'transition=startup_completed' "$p1"; then rail_drift "primary-run1 completed the startup work before it was killed"; fi
	if grep -E "transition=completed .*attempt_id=$initial( |$)" "$p1" | grep -F "$STARTUP_KEY" >/dev/null; then
		rail_drift "primary-run1 completed the initial attempt $initial"
	fi
	local t
	for t in automatic_promotion automatic_recovery recovery_rollover; do
		grep -q "\[mesh-rt continuity\] transition=$t" "$s1" || rail_drift "standby log lacks '[mesh-rt continuity] transition=$t'"
	done
	grep -q 'transition=fenced_rejoin' "$p2" || rail_drift "primary-run2 log lacks transition=fenced_rejoin"
	if grep -E "transition=completed .*attempt_id=$failover( |$)" "$p2" | grep -F "execution=$(rail_get primary)" >/dev/null; then
		rail_drift "the fenced old primary executed the failover attempt $failover"
	fi
	echo "node logs checked"
}

retain_bundle() {
	local b
	b="$(rail_bundle_begin retained-failover)"
	mkdir -p "$b/evidence" "$b/staged-bundle"
	cp "${BASH_SOURCE[0]}" "$b/verify-failover.sh"
	cp "$RAIL_REPO_ROOT/scripts/verify-staged-deploy.sh" "$b/"
	cp "$(rail_get nested_bundle)/$PROJECT.README.md" "$b/" 2>/dev/null || true
	cp "$(rail_get nested_bundle)/generated-project/work/work.go" "$b/work.go" 2>/dev/null || true
	cp "$RAIL_VERIFY_DIR"/*.json "$RAIL_VERIFY_DIR"/*.status "$RAIL_VERIFY_DIR"/*.headers "$RAIL_VERIFY_DIR"/*.body \
		"$RAIL_VERIFY_DIR"/node-*.log "$b/evidence/"
	cp -r "$RAIL_VERIFY_DIR/staged-deploy-verify" "$b/"
	# The staged scripts and SQL; the binary is identified by its digest (the
	# nested proof bundle keeps the binary itself).
	local f
	for f in "$(rail_get bundle)"/*; do
		[[ "$(basename "$f")" == "$PROJECT" ]] || cp -p "$f" "$b/staged-bundle/"
	done
	sha256sum "$(rail_get bundle)/$PROJECT" | sed "s:  .*/:  :" >"$b/staged-bundle/$PROJECT.sha256"
	rail_py "$b/scenario-meta.json" "$(rail_get primary)" "$(rail_get standby)" "$(rail_get cluster_port)" \
		"$STARTUP_KEY" "$(rail_get initial_attempt)" "$(rail_get failover_attempt)" "$(rail_get todo_id)" \
		"$(rail_get nested_bundle)" "$WINDOW_MS" <<'PY'
from rail_json import *
write_json(arg(1), {"primary": arg(2), "standby": arg(3), "cluster_port": int(arg(4)),
                    "request_key": arg(5), "initial_attempt_id": arg(6), "failover_attempt_id": arg(7),
                    "todo_id": arg(8), "staged_deploy_proof_bundle": arg(9),
                    "startup_work_delay_ms": int(arg(10))})
PY
	rail_bundle_seal
}

rail_phase preflight 30 preflight
rail_phase build-meshc 600 rail_build_meshc
rail_phase database 120 rail_pg_use_env_or_throwaway
rail_phase staged-deploy-rail 900 staged_deploy_rail
rail_phase bundle-copy 60 bundle_copy
rail_phase isolated-database 60 rail_pg_create_isolated mesh_rail_failover
rail_phase apply-sql 120 apply_sql
rail_phase pair-start 120 pair_start
rail_phase startup-pending 60 startup_pending
rail_phase pre-kill-writes 30 pre_kill_writes
rail_phase kill-primary 30 kill_primary
rail_phase promotion 45 promotion
rail_phase recovery 120 recovery
rail_phase promoted-crud 60 promoted_crud
rail_phase fenced-rejoin 90 fenced_rejoin
rail_phase records-agree 45 records_agree
rail_phase runtime-logs 60 runtime_logs
rail_phase retain-bundle 120 retain_bundle
rail_finish
