#!/usr/bin/env bash
# verify-remote.sh — read-only verifier of an already-deployed Mesh pair: it
# asks both nodes what they know and checks that they agree, and never
# creates work or changes authority.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: bash scripts/verify-remote.sh [--url BASE_URL]... [--key REQUEST_KEY] NODE_A NODE_B
       bash scripts/verify-remote.sh --help | --phases

  NODE_A, NODE_B  the two node names of the pair (name@host:port, IPv6 hosts
                  bracketed), as meshc cluster takes them
  --url BASE_URL  the HTTP base URL of a node, at most twice (first for
                  NODE_A, second for NODE_B); each must answer GET /health
  --key KEY       a request key whose continuity record must be present and
                  consistent on both nodes (a job id of the reference
                  backend, for one)
  --phases        print the phase names, in order, and exit (touches nothing)
  --help          print this help and exit (touches nothing)

Proves:
  With operator queries and GETs only:
  1. both nodes answer `meshc cluster status` over the authenticated
     transport;
  2. exactly one of them is primary, both report the same promotion epoch,
     each sees a membership of exactly the two nodes, and both report
     replication_health healthy;
  3. the continuity list and the diagnostics of both nodes are readable;
  4. with --key: the record is present on both nodes and they agree on its
     request key, payload hash, attempt, phase, result, owner, execution
     node, runtime name and epoch;
  5. with --url: GET /health answers 200 with status ok, and when the body
     reports cluster_role or promotion_epoch they match the node's status.
  It submits nothing, calls no route, and changes no role or epoch: the e2e
  test runs it against a local pair and checks both nodes' diagnostics and
  record counts are unchanged by the run.

Inputs:
  MESH_CLUSTER_COOKIE or MESH_CLUSTER_COOKIE_FILE  the pair's cookie (never
                on a command line)
  MESHC_BIN     a meshc to use; unset: meshc is built from this checkout
  TMPDIR        scratch space (must be outside the repo).
  Tools: bash, coreutils, go (unless MESHC_BIN), python3, curl.

Never:
  - submits work, calls a clustered route or changes a role or an epoch;
  - writes the cookie to any retained file (redacted, then scanned) or passes
    it on a command line.

Exit codes:
  0 every check passed; 1 a check failed (the failing phase and a log
  excerpt are printed); 2 usage.

Artifacts:
  .tmp/remote/verify/{status.txt,current-phase.txt,phase-report.txt,
  full-contract.log,<phase>.log,<query>.json}; a dated proof bundle under
  .tmp/remote/proof-bundles/ named by verify/latest-proof-bundle.txt.
EOF
}

PHASES=(preflight build-meshc status authority continuity request-key health retain-bundle)

URLS=()
KEY=""
NODES=()
while [[ $# -gt 0 ]]; do
	case "$1" in
	--phases)
		printf '%s\n' "${PHASES[@]}"
		exit 0
		;;
	-h | --help)
		usage
		exit 0
		;;
	--url)
		[[ $# -ge 2 && -n "$2" ]] || {
			echo "verify-remote.sh: --url needs a value" >&2
			exit 2
		}
		URLS+=("${2%/}")
		shift 2
		;;
	--key)
		[[ $# -ge 2 && -n "$2" ]] || {
			echo "verify-remote.sh: --key needs a value" >&2
			exit 2
		}
		KEY="$2"
		shift 2
		;;
	-*)
		echo "verify-remote.sh: unknown argument: $1" >&2
		usage >&2
		exit 2
		;;
	*)
		NODES+=("$1")
		shift
		;;
	esac
done
if [[ ${#NODES[@]} -ne 2 ]]; then
	echo "verify-remote.sh: expected two node names, got ${#NODES[@]}" >&2
	usage >&2
	exit 2
fi
if [[ ${#URLS[@]} -gt 2 ]]; then
	echo "verify-remote.sh: --url may be given at most twice" >&2
	exit 2
fi
COOKIE="${MESH_CLUSTER_COOKIE:-}"
if [[ -z "$COOKIE" && -n "${MESH_CLUSTER_COOKIE_FILE:-}" ]]; then
	COOKIE="$(cat "$MESH_CLUSTER_COOKIE_FILE" 2>/dev/null)" || {
		echo "verify-remote.sh: cannot read MESH_CLUSTER_COOKIE_FILE" >&2
		exit 2
	}
	COOKIE="${COOKIE%$'\n'}"
fi
if [[ -z "$COOKIE" ]]; then
	echo "verify-remote.sh: set MESH_CLUSTER_COOKIE or MESH_CLUSTER_COOKIE_FILE to the pair's cookie" >&2
	exit 2
fi
unset MESH_CLUSTER_COOKIE MESH_CLUSTER_COOKIE_FILE

LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")/lib" && pwd)"
source "$LIB/rail.sh"
source "$LIB/rail-mesh.sh"

rail_init remote "${PHASES[@]}"
rail_set cookie "$COOKIE"
rail_secret MESH_CLUSTER_COOKIE "$COOKIE"
unset COOKIE
A="${NODES[0]}"
B="${NODES[1]}"

preflight() {
	rail_require_tools python3 curl
	[[ -n "${MESHC_BIN:-}" ]] || rail_require_tools go
	[[ "$A" != "$B" ]] || rail_drift "the two node names are the same: $A"
	echo "nodes: $A $B"
	echo "urls: ${URLS[*]:-(none)}"
	echo "request key: ${KEY:-(none)}"
}

status() {
	rail_cluster status-a status "$A"
	rail_cluster status-b status "$B"
}

authority() {
	rail_py "$RAIL_VERIFY_DIR/status-a.json" "$RAIL_VERIFY_DIR/status-b.json" "$A" "$B" <<'PY'
from rail_json import *
a, b, an, bn = status_view(load(arg(1))), status_view(load(arg(2))), arg(3), arg(4)
roles = sorted([a["cluster_role"], b["cluster_role"]])
equal("cluster roles of the pair (exactly one primary)", roles, ["primary", "standby"])
equal("promotion_epoch on both nodes", a["promotion_epoch"], b["promotion_epoch"])
for view, me, peer in ((a, an, bn), (b, bn, an)):
    equal(f"{me} local_node", view["local_node"], me)
    equal(f"{me} membership", view["nodes"], sorted([an, bn]))
    equal(f"{me} peer_nodes", view["peer_nodes"], [peer])
    equal(f"{me} replication_health", view["replication_health"], "healthy")
primary = an if a["cluster_role"] == "primary" else bn
print(f"primary {primary} at epoch {a['promotion_epoch']}; membership of two; replication healthy on both")
PY
}

continuity() {
	rail_cluster continuity-a continuity "$A" --limit 20
	rail_cluster continuity-b continuity "$B" --limit 20
	rail_cluster diagnostics-a diagnostics "$A" --limit 20
	rail_cluster diagnostics-b diagnostics "$B" --limit 20
	rail_py "$RAIL_VERIFY_DIR/continuity-a.json" "$RAIL_VERIFY_DIR/continuity-b.json" \
		"$RAIL_VERIFY_DIR/diagnostics-a.json" "$RAIL_VERIFY_DIR/diagnostics-b.json" "$A" "$B" <<'PY'
from rail_json import *
for lst, diag, node in ((load(arg(1)), load(arg(3)), arg(5)), (load(arg(2)), load(arg(4)), arg(6))):
    expect(isinstance(lst.get("total_records"), int), f"{node} continuity list has no total_records")
    expect(isinstance(lst.get("records"), list), f"{node} continuity list has no records")
    expect(isinstance(diag.get("total_entries"), int), f"{node} diagnostics have no total_entries")
    print(f"{node}: {lst['total_records']} records, {diag['total_entries']} diagnostic entries, {diag.get('dropped_entries')} dropped")
PY
}

request_key() {
	if [[ -z "$KEY" ]]; then
		echo "no --key given: record consistency not checked"
		return 0
	fi
	rail_cluster record-a continuity "$A" "$KEY"
	rail_cluster record-b continuity "$B" "$KEY"
	rail_py "$RAIL_VERIFY_DIR/record-a.json" "$RAIL_VERIFY_DIR/record-b.json" "$KEY" <<'PY'
from rail_json import *
a, b, key = load(arg(1))["record"], load(arg(2))["record"], arg(3)
equal("request_key", a.get("request_key"), key)
for field in ("request_key", "payload_hash", "attempt_id", "phase", "result", "owner_node", "execution_node",
              "declared_handler_runtime_name", "promotion_epoch", "replication_count"):
    equal(f"{key}: {field} on both nodes", a.get(field), b.get(field))
print(f"{key}: {a.get('phase')}/{a.get('result')} {a.get('attempt_id')} owner {a.get('owner_node')} on both nodes")
PY
}

health() {
	if [[ ${#URLS[@]} -eq 0 ]]; then
		echo "no --url given: /health not checked"
		return 0
	fi
	local i
	for i in "${!URLS[@]}"; do
		rail_http "health-$i" GET "${URLS[$i]}/health"
	done
	rail_py "$RAIL_VERIFY_DIR" "${#URLS[@]}" "$RAIL_VERIFY_DIR/status-a.json" "$RAIL_VERIFY_DIR/status-b.json" <<'PY'
from rail_json import *
d, n = arg(1), int(arg(2))
views = [status_view(load(arg(3))), status_view(load(arg(4)))]
for i in range(n):
    code, _, body = http(f"{d}/health-{i}")
    equal(f"GET /health of node {i + 1}", code, 200)
    expect(isinstance(body, dict), f"/health of node {i + 1} is not a JSON object")
    equal(f"/health status of node {i + 1}", body.get("status"), "ok")
    for field in ("cluster_role", "promotion_epoch"):
        if field in body:
            equal(f"/health {field} of node {i + 1} against its status", body[field], views[i][field])
    print(f"node {i + 1} /health: ok")
PY
}

retain_bundle() {
	local b
	b="$(rail_bundle_begin retained-remote)"
	mkdir -p "$b/evidence"
	cp "$RAIL_VERIFY_DIR"/*.json "$b/evidence/"
	cp "$RAIL_VERIFY_DIR"/*.body "$b/evidence/" 2>/dev/null || true
	rail_bundle_seal
}

rail_phase preflight 30 preflight
rail_phase build-meshc 600 rail_build_meshc
rail_phase status 60 status
rail_phase authority 30 authority
rail_phase continuity 60 continuity
rail_phase request-key 60 request_key
rail_phase health 60 health
rail_phase retain-bundle 60 retain_bundle
rail_finish
