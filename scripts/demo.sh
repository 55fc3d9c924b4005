#!/usr/bin/env bash
# Runs a real two-node Mesh cluster on this machine and prints what an
# operator sees: a primary on 127.0.0.1 and a standby on [::1], sharing one
# cluster port, discovered through the seed "localhost". Builds meshc and the
# clustered example, waits for the pair to converge and for its startup work to
# complete, prints both nodes' `meshc cluster status` and the continuity record,
# then stops both nodes. Bounded: it gives up after MESH_DEMO_TIMEOUT seconds.
#
#   MESH_DEMO_PORT     cluster port (default 4370)
#   MESH_DEMO_TIMEOUT  seconds to wait for convergence (default 30)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
port=${MESH_DEMO_PORT:-4370}
budget=${MESH_DEMO_TIMEOUT:-30}
work="$root/.tmp/demo"
rm -rf "$work" && mkdir -p "$work/bin"

echo "==> building meshc and examples/hello-cluster"
(cd "$root" && go build -o "$work/bin/meshc" ./cmd/meshc)
(cd "$root/examples/hello-cluster" && go build -o "$work/bin/hello-cluster" .)

export MESH_CLUSTER_COOKIE="$("$work/bin/meshc" cluster cookie)"
primary="primary@127.0.0.1:$port"
standby="standby@[::1]:$port"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start() { # name role log
  MESH_NODE_NAME="$1" MESH_CONTINUITY_ROLE="$2" MESH_DISCOVERY_SEED=localhost \
    MESH_CLUSTER_PORT="$port" MESH_STATE_DIR="$work/state-$2" MESH_DISCOVERY_INTERVAL_MS=1000 \
    "$work/bin/hello-cluster" >"$work/$2.log" 2>&1 &
  pids+=($!)
}
echo "==> starting $primary (primary) and $standby (standby)"
start "$primary" primary
start "$standby" standby

meshc() { "$work/bin/meshc" "$@"; }
deadline=$((SECONDS + budget))
until meshc cluster continuity "$primary" startup::work.Add --json 2>/dev/null | grep '"phase": "completed"' >/dev/null &&
      meshc cluster status "$standby" --json 2>/dev/null | grep "\"$primary\"" >/dev/null; do
  if ((SECONDS >= deadline)); then
    echo "demo: the pair did not converge within ${budget}s; logs in $work" >&2
    tail -n 20 "$work"/*.log >&2
    exit 1
  fi
  sleep 0.3
done

echo
echo "==> meshc cluster status $primary"
meshc cluster status "$primary"
echo
echo "==> meshc cluster status $standby"
meshc cluster status "$standby"
echo
echo "==> meshc cluster continuity $standby startup::work.Add"
meshc cluster continuity "$standby" startup::work.Add
echo
echo "demo: ok (node logs in $work; both nodes are stopped now)"
