#!/usr/bin/env bash
# Runs the timing-sensitive tests many times on a loaded machine, to find the
# races that pass on an idle machine and fail on a busy CI runner. Run it
# before landing a change to code that starts processes, uses the fault
# network or waits on time.
#
# What it does:
#   1. starts STRESS_LOAD busy loops (bounded by STRESS_MAX_SECONDS, stopped on
#      exit) so the tests compete for the CPU;
#   2. runs STRESS_PKGS with -race -count=STRESS_COUNT -cpu STRESS_CPU, so each
#      test runs STRESS_COUNT times at each GOMAXPROCS value, and with -short
#      (STRESS_SHORT): the volume tests (a 17 MiB operator reply, 100,000
#      submissions) run smaller or not at all: they check sizes and bounds,
#      which repeating them does not check any better, and `make test` runs
#      them in full once (test-go-floor); then the starter
#      and rail tests of ./e2e/ (each about a minute a run, with PostgreSQL)
#      STRESS_E2E_COUNT times at each GOMAXPROCS value;
#   3. runs each shell rail in STRESS_RAILS (if any) STRESS_RAIL_LOOPS times;
#   4. prints every failing test with the number of runs it failed, the
#      artifact directories the failing tests kept, and a one-line summary.
# It exits 1 if anything failed, 0 otherwise. It never retries a failure.
#
#   STRESS_COUNT        runs per test and GOMAXPROCS value      (default 10)
#   STRESS_CPU          GOMAXPROCS values, comma-separated       (default 1,2)
#   STRESS_PKGS         packages                                 (default: below)
#   STRESS_RUN          -run filter, empty for every test        (default empty)
#   STRESS_SHORT        1: go test -short; 0: the volume tests in full (default 1)
#   STRESS_E2E_COUNT    runs of the ./e2e/ starter and rail tests (default 2; 0 skips)
#   STRESS_LOAD         background busy loops                    (default 1)
#   STRESS_RAILS        rails to loop, e.g. "verify-failover"    (default none)
#   STRESS_RAIL_LOOPS   runs of each rail                        (default 3)
#   STRESS_MAX_SECONDS  hard bound for each go test run and the load
#                       (default 7200: on a 2-vCPU machine the defaults took
#                       60 minutes, e2e/cluster's 20 runs 51 of them)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

count=${STRESS_COUNT:-10}
cpus=${STRESS_CPU:-1,2}
# The packages whose tests start processes, drive the fault network or wait
# on time: the engine (internal/cluster: in-process clusters over the fault
# network), the public package, the test kit, and the real-process cluster
# tests.
pkgs=${STRESS_PKGS:-"./internal/cluster/ . ./meshtest/... ./e2e/cluster/"}
run=${STRESS_RUN:-}
short=${STRESS_SHORT:-1}
e2e_count=${STRESS_E2E_COUNT:-2}
load=${STRESS_LOAD:-1}
rails=${STRESS_RAILS:-}
rail_loops=${STRESS_RAIL_LOOPS:-3}
max=${STRESS_MAX_SECONDS:-7200}

out="$root/.tmp/stress/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

hogs=()
stop_load() {
	for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${hogs[@]}"; do wait "$pid" 2>/dev/null || true; done
	hogs=()
}
trap stop_load EXIT
for ((i = 0; i < load; i++)); do
	timeout "$max" sh -c 'while :; do :; done' &
	hogs+=($!)
done

shortflag=()
if [[ $short == 1 ]]; then shortflag=(-short); fi
ncpu=$(tr ',' '\n' <<<"$cpus" | grep -c .)
echo "stress: $pkgs: -race ${shortflag[*]:-}${shortflag[*]:+ }-count=$count -cpu $cpus (each test $((count * ncpu)) runs)${run:+ -run $run}, $load busy loop(s); log in $out"
start=$SECONDS
set +e
# shellcheck disable=SC2086 # pkgs is a list of package patterns
timeout "$max" go test -race "${shortflag[@]}" -count="$count" -cpu "$cpus" ${run:+-run "$run"} -timeout "${max}s" $pkgs >"$out/go-test.log" 2>&1
go_rc=$?
if ((e2e_count > 0)); then
	echo "stress: ./e2e/ starters and rails: -race -count=$e2e_count -cpu $cpus (each test $((e2e_count * ncpu)) runs)"
	timeout "$max" go test -race -count="$e2e_count" -cpu "$cpus" -run 'Starter|Rail' -timeout "${max}s" ./e2e/ >>"$out/go-test.log" 2>&1
	e2e_rc=$?
	if ((e2e_rc != 0)); then go_rc=$e2e_rc; fi
fi
set -e
go_secs=$((SECONDS - start))

rail_fail=0
rail_runs=0
for rail in $rails; do
	for ((i = 1; i <= rail_loops; i++)); do
		rail_runs=$((rail_runs + 1))
		log="$out/$rail-$i.log"
		if bash "scripts/$rail.sh" >"$log" 2>&1; then
			echo "stress: $rail run $i/$rail_loops passed"
		else
			rail_fail=$((rail_fail + 1))
			echo "stress: $rail run $i/$rail_loops FAILED (log $log; evidence under .tmp/$rail/)"
		fi
	done
done
stop_load
secs=$((SECONDS - start))

# A test that fails prints "--- FAIL: Name (…)" once per failed run; a
# package that fails to build, panics or times out prints "FAIL <pkg>" with no
# test line, which counts as a failure of the whole package.
fails=$(grep -oE -- '--- FAIL: [^ ]+' "$out/go-test.log" | sed 's/--- FAIL: //' | sort | uniq -c | sort -rn || true)
pkg_fails=$(grep -E '^FAIL[[:space:]]+[^[:space:]]+' "$out/go-test.log" | awk '{print $2}' | sort -u || true)
failed_runs=0
if [[ -n "$fails" ]]; then
	echo "stress: failing tests (failed runs; each test ran $((count * ncpu)) times, ./e2e/ tests $((e2e_count * ncpu))):"
	while read -r n name; do
		echo "  $name: $n"
		failed_runs=$((failed_runs + n))
	done <<<"$fails"
fi
if [[ -n "$pkg_fails" ]]; then
	echo "stress: failing packages: $(tr '\n' ' ' <<<"$pkg_fails")"
fi
kept=$(grep -oE 'artifacts kept in [^ ]+' "$out/go-test.log" | sed 's/artifacts kept in //' | sort -u || true)
if [[ -n "$kept" ]]; then
	echo "stress: artifacts kept by failing tests:"
	sed 's/^/  /' <<<"$kept"
fi
if ((go_rc == 124)); then
	echo "stress: the run was cut at STRESS_MAX_SECONDS=$max; a package that did not report did not run to its end"
fi
if ((go_rc != 0)); then
	echo "stress: go test exited $go_rc; last lines of $out/go-test.log:"
	tail -n 30 "$out/go-test.log" | sed 's/^/  /'
fi

status=passed
if ((go_rc != 0 || rail_fail != 0)); then
	status=FAILED
fi
echo "stress: $status: $failed_runs failed test runs, $rail_fail of $rail_runs rail runs failed; go test ${go_secs}s, total ${secs}s; -count=$count -cpu $cpus, $load busy loop(s); log $out/go-test.log"
[[ $status == passed ]]
