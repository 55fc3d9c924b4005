#!/usr/bin/env bash
# upgrade-check.sh — a rolling upgrade across one cluster protocol version,
# with real processes on loopback, under a keyed client load.
#
#   bash scripts/upgrade-check.sh [OLD_REV]     (make upgrade-check)
#
# Builds e2e/testapp and meshc twice: from OLD_REV (default ea83310, the last
# commit whose nodes speak protocol 3 only; read from this checkout's git
# history with `git archive`, so a shallow clone needs `git fetch --unshallow`)
# and from the checkout. Then:
#   1. a pair of the old build forms (primary on 127.0.0.1, standby on [::1]);
#   2. the standby is stopped (SIGTERM) and started again on the new build,
#      with the same environment and state directory: it links with the old
#      primary on protocol 3 and says so in its log;
#   3. meshc of either build queries a node of the other;
#   4. the old primary is stopped (SIGTERM): it hands the primary role over to
#      the new node (switchover_promoted, epoch 1), and is started again on the
#      new build: the pair links on the newest protocol and is healthy;
#   5. the upgrade over, both nodes restart the same way with
#      MESH_CLUSTER_MIN_PROTOCOL at the newest version: they link again, and
#      the old meshc is refused (protocol_below_minimum in diagnostics).
# Throughout, a client sends count-2 route requests with an Idempotency-Key to
# both nodes. Every request answered 200 must be completed on both nodes at
# the end; every refusal must carry a reason. Bounded: each wait gives up
# after UPGRADE_TIMEOUT seconds (default 30); the load stops by itself.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
old_rev=${1:-ea83310}
budget=${UPGRADE_TIMEOUT:-30}
work="$root/.tmp/upgrade-check"
rm -rf "$work" && mkdir -p "$work/bin" "$work/old-src" "$work/load"

say() { echo "==> $*"; }
fail() {
	echo "upgrade-check: FAIL: $*" >&2
	for f in "$work"/*.log; do echo "--- $f" >&2; tail -n 15 "$f" >&2; done
	exit 1
}

say "building e2e/testapp and meshc at $old_rev (old) and at the checkout (new)"
git -C "$root" rev-parse --verify --quiet "$old_rev^{commit}" >/dev/null ||
	fail "commit $old_rev is not in this checkout's history (a shallow clone? run git fetch --unshallow)"
git -C "$root" archive "$old_rev" | tar -x -C "$work/old-src"
(cd "$work/old-src" && go build -o "$work/bin/testapp-old" ./e2e/testapp && go build -o "$work/bin/meshc-old" ./cmd/meshc)
rm -rf "$work/old-src"
(cd "$root" && go build -o "$work/bin/testapp-new" ./e2e/testapp && go build -o "$work/bin/meshc-new" ./cmd/meshc)

export MESH_CLUSTER_COOKIE="$("$work/bin/meshc-new" cluster cookie)"
# A cluster port with the two HTTP ports after it, none of them answering on
# either loopback address (a port in use would show up as a wait timing out).
in_use() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
for _ in $(seq 50); do
	port=$((20000 + RANDOM % 20000))
	free=1
	for p in "$port" $((port + 1)) $((port + 2)); do
		if in_use 127.0.0.1 "$p" || in_use ::1 "$p"; then free=0; fi
	done
	((free)) && break
done
((free)) || fail "no free run of three ports found"
http_p=$((port + 1)) http_s=$((port + 2))
P="primary@127.0.0.1:$port" S="standby@[::1]:$port"
declare -A pid=()
cleanup() {
	touch "$work/stop" # the load loops end at their next request
	for p in "${pid[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

min_protocol= # MESH_CLUSTER_MIN_PROTOCOL of the nodes started next (blank: unset)
start() { # build name role http-addr run
	MESH_CLUSTER_MIN_PROTOCOL="$min_protocol" MESH_NODE_NAME="$2" MESH_CONTINUITY_ROLE="$3" MESH_DISCOVERY_SEED=localhost MESH_CLUSTER_PORT="$port" \
		MESH_STATE_DIR="$work/state-$3" MESH_DISCOVERY_INTERVAL_MS=500 TESTAPP_HTTP_ADDR="$4" \
		"$work/bin/testapp-$1" >"$work/$3-$5-$1.log" 2>&1 &
	pid[$3]=$!
}
stop() { # role: SIGTERM, then wait for the process to exit
	kill -TERM "${pid[$1]}"
	wait "${pid[$1]}" || true
	unset "pid[$1]"
}
meshc() { "$work/bin/meshc-new" "$@"; }
wait_for() { # description, then a command that succeeds when the wait is over
	local what=$1 deadline=$((SECONDS + budget))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || fail "$what: not within ${budget}s"
		sleep 0.3
	done
}
healthy() { # node role epoch: the node reports its peer, that role and epoch, and healthy
	local s
	s=$(meshc cluster status "$1" --json) || return 1
	grep -q "\"cluster_role\": \"$2\"" <<<"$s" && grep -q "\"promotion_epoch\": $3" <<<"$s" &&
		grep -q '"replication_health": "healthy"' <<<"$s" && grep -q '"ready": true' <<<"$s"
}

# The load: one loop per node, each request under a new key, until $work/stop
# exists or 20,000 requests were sent.
load() { # name url
	local i=0 code body
	while [[ ! -e "$work/stop" ]] && ((i < 20000)); do
		key="upgrade-$1-$i"
		body=$(curl -s -m 10 -o - -w '\n%{http_code}' -H "Idempotency-Key: $key" "$2/todos" 2>/dev/null) || body=$'\n000'
		code=${body##*$'\n'}
		case $code in
		200) echo "$key" >>"$work/load/acked" ;;
		000) echo "$key transport" >>"$work/load/errors" ;;
		*) echo "$key $code $(tr -d '\n' <<<"${body%$'\n'*}")" >>"$work/load/refused" ;;
		esac
		i=$((i + 1))
		sleep 0.02
	done
}

say "1. a pair of the old build: $P and $S"
start old "$P" primary "127.0.0.1:$http_p" 1
start old "$S" standby "[::1]:$http_s" 1
wait_for "old pair healthy" healthy "$P" primary 0
wait_for "old standby healthy" healthy "$S" standby 0
load primary "http://127.0.0.1:$http_p" &
load_p=$!
load standby "http://[::1]:$http_s" &
load_s=$!
sleep 2

say "2. the standby restarts on the new build"
stop standby
start new "$S" standby "[::1]:$http_s" 2
wait_for "new standby linked to the old primary" healthy "$S" standby 0
wait_for "old primary sees the new standby" healthy "$P" primary 0
grep -q "peer speaks an older protocol version; linked on it until the peer is upgraded peer=$P protocol=3 local_protocol=" "$work/standby-2-new.log" ||
	fail "the new standby did not log that it linked on protocol 3"
link_protocol() { # node: the protocol_version of its one peer link in meshc cluster status
	meshc cluster status "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["peers"][0]["protocol_version"])'
}
mixed=$(link_protocol "$S")
[[ $mixed == 3 ]] || fail "meshc cluster status $S shows the link on protocol $mixed, want 3"
echo "    meshc cluster status: the link is on protocol $mixed"
sleep 2

say "3. meshc of each build against a node of the other"
"$work/bin/meshc-new" cluster status "$P" --json >/dev/null || fail "new meshc cannot query the old primary"
"$work/bin/meshc-old" cluster status "$S" --json >/dev/null || fail "old meshc cannot query the new standby"

say "4. the old primary stops and hands over, then restarts on the new build"
stop primary
start new "$P" primary "127.0.0.1:$http_p" 2
wait_for "the restarted node rejoined as the standby" healthy "$P" standby 1
wait_for "the new primary sees its standby" healthy "$S" primary 1
# Two nodes of the new build link on its newest version: the restarted node
# logs no link on an older one (meshc cluster status is checked below).
if grep -q "older protocol version" "$work/primary-2-new.log"; then
	fail "a link of two nodes of the new build used an older protocol version"
fi
grep -q "transition=switchover_promoted" "$work/standby-2-new.log" ||
	fail "the new standby did not take the primary role through a switchover"
for node in "$P" "$S"; do
	v=$(link_protocol "$node")
	[[ $v == "$("$work/bin/meshc-new" version | sed -n 's/^protocol: \([0-9]*\).*/\1/p')" ]] ||
		fail "meshc cluster status $node shows the link on protocol $v, want the newest"
	echo "    meshc cluster status $node: the link is on protocol $v"
done
sleep 2

newest=$("$work/bin/meshc-new" version | sed -n 's/^protocol: \([0-9]*\).*/\1/p')
say "5. the upgrade is over: both nodes restart with MESH_CLUSTER_MIN_PROTOCOL=$newest"
min_protocol=$newest
stop primary # $P, the standby now
start new "$P" primary "127.0.0.1:$http_p" 3
wait_for "the standby back with the minimum" healthy "$P" standby 1
wait_for "the primary sees it" healthy "$S" primary 1
stop standby # $S, the primary now: it hands over
start new "$S" standby "[::1]:$http_s" 3
wait_for "the old primary back as the standby" healthy "$S" standby 2
wait_for "the new primary sees it" healthy "$P" primary 2
if "$work/bin/meshc-old" cluster status "$P" --json >"$work/meshc-old-refused.out" 2>&1; then
	fail "meshc of the old build still queries a node whose minimum is protocol $newest"
fi
meshc cluster diagnostics "$P" --json | grep '"reason": "protocol_below_minimum"' >/dev/null ||
	fail "$P does not report the old meshc's refusal as protocol_below_minimum"
echo "    the old meshc is refused: $(tail -n 1 "$work/meshc-old-refused.out")"
sleep 2
touch "$work/stop"
wait "$load_p" "$load_s"

say "checking the load"
acked=$(sort -u "$work/load/acked" 2>/dev/null | wc -l)
refused=$(wc -l <"$work/load/refused" 2>/dev/null || echo 0)
errors=$(wc -l <"$work/load/errors" 2>/dev/null || echo 0)
((acked > 0)) || fail "no request was acknowledged"
if [[ -s "$work/load/refused" ]] && grep -v '"error":"[a-z_:]\+' "$work/load/refused" >/dev/null; then
	fail "refusals without a reason: $(grep -v '"error":"[a-z_:]\+' "$work/load/refused" | head -3)"
fi
for node in "$P" "$S"; do
	meshc cluster continuity "$node" --limit 100000 --json >"$work/records-${node%%@*}.json" ||
		fail "meshc cluster continuity $node"
	# Every acknowledged key is completed on this node.
	python3 - "$work/records-${node%%@*}.json" "$work/load/acked" "$node" <<'PY' || fail "$node does not hold every acknowledged request completed"
import json, sys
records, acked, node = sys.argv[1:4]
by_key = {}
for r in json.load(open(records))["records"]:
    by_key[r["request_key"].rsplit("::", 1)[-1]] = r
bad = []
for key in sorted(set(open(acked).read().split())):
    r = by_key.get(key)
    if r is None or r["phase"] != "completed" or r["result"] != "succeeded":
        bad.append((key, r and (r["phase"], r["result"], r["error"])))
for key, what in bad[:5]:
    print(f"{node}: {key}: {what or 'no record'}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
done
echo "acknowledged $acked, refused with a reason $refused, transport errors $errors"
grep -h "transition=switchover_promoted\|older protocol version" "$work"/*.log | sed 's/^/  /' | head -5
echo "upgrade-check: ok (logs in $work)"
