#!/usr/bin/env bash
# chaos.sh — the chaos soak (e2e/chaos): a primary/standby pair of real node
# processes under twelve keyed clients and seeded random faults, checked for
# lost acknowledged work, double executions, replay mismatches, refusals
# without a reason, hung requests, split authority and records that disagree.
set -uo pipefail

usage() {
	cat <<'USAGE'
Usage: bash scripts/chaos.sh [short|long]

  short  crash/freeze faults on loopback: SIGKILL of the primary or the
         standby (restarted from their original environment), SIGSTOP/SIGCONT
         of the primary; CHAOS_DURATION defaults to 60s (under 90 s in all)
  long   (default) the crash/freeze soak, then the partition soak: two
         network namespaces whose cluster link is cut while clients reach
         both nodes (needs root; otherwise it says "skipped: needs root for
         network namespaces"); CHAOS_DURATION defaults to 10m for each

Environment: SEED=<n> repeats a run's random choices (every run prints its
seed); CHAOS_DURATION=<Go duration> sets how long faults are injected;
CHAOS_CONTINUITY_STORE=log runs both nodes with the durable record log
(MESH_CONTINUITY_STORE; the default is the nodes' default, memory), so a
killed node comes back from its own log; MESH_KEEP_ARTIFACTS=1 keeps the
evidence of a passing run too.

The last line printed is the summary of the last soak; a failing soak keeps
its client history, side-effect log, node logs, final records and
diagnostics under .tmp/chaos/<time>-<mode>/ and prints that path.
USAGE
}

form=${1:-long}
case "$form" in
short)
	tests='^TestChaosCrash$'
	export CHAOS_DURATION=${CHAOS_DURATION:-60s}
	timeout=10m
	;;
long)
	tests='^(TestChaosCrash|TestChaosPartition)$'
	export CHAOS_DURATION=${CHAOS_DURATION:-10m}
	timeout=${CHAOS_TIMEOUT:-3h}
	;;
-h | --help)
	usage
	exit 0
	;;
*)
	usage >&2
	exit 2
	;;
esac

cd "$(dirname "$0")/.."
mkdir -p .tmp/chaos
log=$(mktemp .tmp/chaos/run-XXXXXX.log)
MESH_CHAOS=1 go test -count=1 -v -timeout "$timeout" -run "$tests" ./e2e/chaos/ 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
echo
grep -E 'skipped: needs root|soak: artifacts kept in' "$log" || true
if ! grep -q '^chaos summary:' "$log"; then
	echo "chaos: no soak ran to its summary (exit $rc); go test output kept in $log"
	exit $((rc == 0 ? 1 : rc))
fi
summaries=$(grep '^chaos summary:' "$log")
rm -f "$log"
echo "$summaries"
exit "$rc"
