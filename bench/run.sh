#!/usr/bin/env bash
# bench/run.sh — `make bench`: every speed and memory measurement of the
# runtime, on this machine, in one run (about 8 minutes with the defaults).
#
#   1. route throughput/latency on a real two-node cluster (bench/loadgen)
#   2. in-process route cost per request + CPU profiles (bench, go test -bench)
#   3. failover timing, SIGKILL and SIGSTOP (bench/failover)
#   4. heap under 200,000 records, via Node.Submit and via HTTP (bench)
#   5. wire and handshake micro-benchmarks
#
# Everything goes to bench/out/<UTC timestamp>/ (git-ignored): one .txt per
# step, node logs, JSON results, CPU profiles and `pprof -top` listings.
# Numbers for bench/RESULTS.md are copied from there by hand.
#
# Knobs (environment):
#   BENCH_ROUNDS=10         route rounds (each runs every scenario once; more,
#                           shorter rounds average out drift of a shared host)
#   BENCH_WINDOW=2s         measured window per scenario per round
#   BENCH_WARMUP=500ms      warm-up before each window
#   BENCH_WORKERS=32        concurrent keep-alive connections
#   BENCH_PACED_ROUNDS=6    rounds of the fixed-rate pass (plain and one-local
#                           at half of plain's closed-loop throughput)
#   BENCH_FAILOVER_RUNS=10  runs per failover mode
#   BENCH_STEPS="routes inprocess failover memory micro"  steps to run
#
# All traffic stays on 127.0.0.1 / [::1]. Every loop is bounded by a window
# or a count. Node processes are killed on exit, also on Ctrl-C.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
GO=${GO:-go}
ROUNDS=${BENCH_ROUNDS:-10}
WINDOW=${BENCH_WINDOW:-2s}
WARMUP=${BENCH_WARMUP:-500ms}
WORKERS=${BENCH_WORKERS:-32}
PACED_ROUNDS=${BENCH_PACED_ROUNDS:-6}
FAILOVER_RUNS=${BENCH_FAILOVER_RUNS:-10}
STEPS=${BENCH_STEPS:-"routes inprocess failover memory micro"}

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$ROOT/bench/out/$STAMP"
BIN="$OUT/bin"
mkdir -p "$BIN"

load() { cut -d' ' -f1-3 /proc/loadavg; }
# busy: % of all CPUs used by every process over the next 2 s (nothing of
# ours runs then, so this is what other work takes from the measurement).
busy() {
	local a b
	a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
	sleep 2
	b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN{split(a,x," ");split(b,y," ");
		t=(y[1]-x[1])+(y[2]-x[2]); if(t>0) printf "%.0f%%", 100*(y[1]-x[1])/t; else print "?"}'
}
step() { printf '\n=== %s (load %s, other processes busy %s of the CPUs, %s)\n' "$1" "$(load)" "$(busy)" "$(date -u +%H:%M:%S)"; }
has() { [[ " $STEPS " == *" $1 "* ]]; }

{
	echo "date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "nproc:     $(nproc)"
	echo "cpu:       $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') MHz, cache $(grep -m1 'cache size' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "memory:    $(grep MemTotal /proc/meminfo | awk '{printf "%.1f GiB", $2/1048576}')"
	echo "go:        $($GO version)"
	echo "kernel:    $(uname -sr)"
	echo "commit:    $(git rev-parse --short HEAD 2>/dev/null || echo unknown) ($(git status --porcelain 2>/dev/null | grep -c . || true) changed/untracked paths)"
	echo "uptime:    $(uptime)"
} | tee "$OUT/machine.txt"

step "build"
$GO build -o "$BIN/testapp" ./e2e/testapp
$GO build -o "$BIN/loadgen" ./bench/loadgen
$GO build -o "$BIN/failover" ./bench/failover
$GO test -c -o "$BIN/bench.test" ./bench/

if has routes; then
	step "1. routes on a real two-node cluster"
	"$BIN/loadgen" -testapp "$BIN/testapp" -c "$WORKERS" -warmup "$WARMUP" -d "$WINDOW" \
		-rounds "$ROUNDS" -paced-rounds "$PACED_ROUNDS" -out "$OUT/routes" | tee "$OUT/routes.txt"
	echo "load after: $(load)" | tee -a "$OUT/routes.txt"
fi

if has inprocess; then
	step "2. in-process route cost and CPU profiles"
	(cd bench && "$BIN/bench.test" -test.run '^$' -test.bench 'BenchmarkRouteHandler' -test.benchmem \
		-test.benchtime 2s -test.count 1) | tee "$OUT/inprocess.txt"
	for c in plain one-local one-remote todos; do
		(cd bench && "$BIN/bench.test" -test.run '^$' -test.bench "BenchmarkRouteHTTP/$c\$" -test.benchmem \
			-test.benchtime 3s -test.cpuprofile "$OUT/cpu-http-$c.prof") | tee -a "$OUT/inprocess.txt"
		$GO tool pprof -top -nodecount 40 "$BIN/bench.test" "$OUT/cpu-http-$c.prof" >"$OUT/pprof-top-http-$c.txt" 2>/dev/null
		$GO tool pprof -top -cum -nodecount 300 "$BIN/bench.test" "$OUT/cpu-http-$c.prof" 2>/dev/null |
			grep -E 'Duration|flat%|meshgo\.dev/mesh' | head -45 >"$OUT/pprof-cum-mesh-http-$c.txt" || true
	done
	echo "load after: $(load)" | tee -a "$OUT/inprocess.txt"
fi

if has failover; then
	step "3. failover timing"
	"$BIN/failover" -testapp "$BIN/testapp" -runs "$FAILOVER_RUNS" -out "$OUT/failover" | tee "$OUT/failover.txt"
	echo "load after: $(load)" | tee -a "$OUT/failover.txt"
fi

if has memory; then
	step "4. heap under 200,000 records"
	(cd bench && "$BIN/bench.test" -test.run '^$' -test.bench 'Retention' -test.benchtime 1x -test.v) | tee "$OUT/memory.txt"
	echo "load after: $(load)" | tee -a "$OUT/memory.txt"
fi

if has micro; then
	step "5. wire and handshake micro-benchmarks"
	$GO test -run '^$' -bench . -benchmem ./internal/wire/ ./internal/handshake/ | tee "$OUT/micro.txt"
	echo "load after: $(load)" | tee -a "$OUT/micro.txt"
fi

# Keep bench.test: the CPU profiles are symbolized against it.
rm -f "$BIN/testapp" "$BIN/loadgen" "$BIN/failover"
step "done"
echo "results in $OUT"
