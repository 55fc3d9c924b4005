#!/usr/bin/env bash
# bench/run.sh — `make bench`: every speed and memory measurement of the
# runtime, on this machine, in one run (about 10 minutes with the defaults).
#
#   1. routes: route throughput, latency, CPU per request, and system
#      calls and thread sleeps per request, on a real two-node cluster of
#      bench/routeapp, driven by wrk (bench/wrkroutes, routes.lua); wrk is
#      installed from the distribution's packages (apt-get install wrk)
#      when it is missing
#   2. paced: p99 of plain and Clustered(1) at one fixed request rate
#      (bench/loadgen -paced-only)
#   3. inprocess: in-process route cost per request + CPU profiles (bench,
#      go test -bench)
#   4. failover: failover timing, SIGKILL and SIGSTOP (bench/failover)
#   5. memory: heap under 200,000 records, via Node.Submit and via HTTP (bench),
#      and heap and goroutines flat over 500,000 records through the durable
#      store (internal/cluster TestLogStoreMemoryFlat, about 1.5 minutes)
#   6. micro: wire and handshake micro-benchmarks
#   7. durable: the durable record store (MESH_CONTINUITY_STORE=log) against
#      memory, both against plain: Clustered(1) and Clustered(2) throughput
#      and p99 (wrk, the two stores alternately), fsyncs and acknowledgements
#      per fsync on each node, and the disk's own fsync latency; Clustered(2)
#      at both durability points side by side: durable on both nodes (the
#      product) and durable on one node plus the peer's memory (the routeapp
#      built with -tags mesh_ackfrommemory); and the log store with one
#      processor per node (GOMAXPROCS=1, as on a one-CPU machine: there the
#      store's fsyncs hold the node's only processor) (about 3.5 minutes)
#   8. typed: the typed submit→result round trip of declared work
#      (mesh.SubmitWork, then Result) on one standalone node and on a real
#      pair, submitted on the owner and on the non-owner (bench/typedwork),
#      next to DBOS Transact Go's one-step workflow with a workflow ID
#      (RunWorkflow, then GetResult) against a throwaway PostgreSQL server
#      (bench/dbos, a module of its own), when the PostgreSQL server
#      binaries are on this machine (under a minute)
#   9. metrics: what the Prometheus metrics cost a clustered request: plain
#      and Clustered(1) with the routeapp as built, and with it built with
#      -tags mesh_nometrics (the metrics compiled out), alternately (wrk;
#      about a minute)
#
# The closed-loop route figures come from wrk, the tool a user would pick.
# bench/loadgen is kept only for what wrk cannot do: a fixed request rate
# (Debian's wrk has no rate option), step 2. Failover timing is
# bench/failover, step 4.
#
# Everything goes to bench/out/<UTC timestamp>/ (git-ignored): one .txt per
# step, node logs, JSON results, CPU profiles and `pprof -top` listings.
# Numbers for bench/RESULTS.md are copied from there by hand.
#
# Knobs (environment):
#   BENCH_ROUNDS=5          route rounds (each runs every scenario once, the
#                           order rotated by one each round)
#   BENCH_WINDOW=5s         measured window per scenario per round (whole
#                           seconds: wrk's unit)
#   BENCH_WARMUP=1s         warm-up before each window (whole seconds)
#   BENCH_CONNECTIONS=32    wrk connections (BENCH_WORKERS is the old name)
#   BENCH_WRK_THREADS=nproc wrk threads
#   BENCH_NODE_ENV=""       extra environment for both nodes of the route step,
#                           e.g. "MESH_CONTINUITY_STORE=memory" (space-separated)
#   BENCH_PROFILE=1         after the rounds, one more Clustered(2) window with
#                           CPU profiles of both nodes (0: skip)
#   BENCH_PACED_ROUNDS=6    rounds of the fixed-rate pass (plain and Clustered(1)
#                           at half of plain's closed-loop throughput)
#   BENCH_PACED_WINDOW=2s   its window per scenario per round
#   BENCH_FAILOVER_RUNS=10  runs per failover mode
#   BENCH_DURABLE_ROUNDS=2  rounds of the durable step (each: memory, then log
#                           plain+Clustered(1), then log plain+Clustered(2),
#                           then the same with the one-disk durability point,
#                           then log plain+Clustered(1)+Clustered(2) with
#                           GOMAXPROCS=1 on both nodes)
#   BENCH_DURABLE_WINDOW=3s its window per scenario (whole seconds)
#   BENCH_TYPED_ROUNDS=2    rounds of the typed step (each scenario once a round)
#   BENCH_TYPED_WINDOW=2s   its window per scenario per round
#   BENCH_TYPED_CLIENTS=16  its closed-loop clients (in the submitting process)
#   BENCH_TYPED_DBOS=1      run the DBOS Transact Go comparison (0: skip)
#   BENCH_ARBITER=""        a postgres://... URL (a database the run may write
#                           a mesh_authority row to) or an etcd://host:port:
#                           step 4 then also times SIGKILL failover under
#                           that lease
#   BENCH_METRICS_ROUNDS=3  rounds of the metrics step (each: with, then without)
#   BENCH_METRICS_WINDOW=3s its window per scenario (whole seconds)
#   BENCH_STEPS="routes paced inprocess failover memory micro durable typed metrics"  steps to run
#   WRK=wrk                 the wrk binary
#
# All traffic stays on 127.0.0.1 / [::1]. Every loop is bounded by a window
# or a count. Node processes are killed on exit, also on Ctrl-C.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
GO=${GO:-go}
ROUNDS=${BENCH_ROUNDS:-5}
WINDOW=${BENCH_WINDOW:-5s}
WARMUP=${BENCH_WARMUP:-1s}
CONNECTIONS=${BENCH_CONNECTIONS:-${BENCH_WORKERS:-32}}
WRK_THREADS=${BENCH_WRK_THREADS:-$(nproc)}
PROFILE=${BENCH_PROFILE:-1}
NODE_ENV=${BENCH_NODE_ENV:-}
PACED_ROUNDS=${BENCH_PACED_ROUNDS:-6}
PACED_WINDOW=${BENCH_PACED_WINDOW:-2s}
FAILOVER_RUNS=${BENCH_FAILOVER_RUNS:-10}
DURABLE_ROUNDS=${BENCH_DURABLE_ROUNDS:-2}
DURABLE_WINDOW=${BENCH_DURABLE_WINDOW:-3s}
TYPED_ROUNDS=${BENCH_TYPED_ROUNDS:-2}
TYPED_WINDOW=${BENCH_TYPED_WINDOW:-2s}
TYPED_CLIENTS=${BENCH_TYPED_CLIENTS:-16}
TYPED_DBOS=${BENCH_TYPED_DBOS:-1}
METRICS_ROUNDS=${BENCH_METRICS_ROUNDS:-3}
METRICS_WINDOW=${BENCH_METRICS_WINDOW:-3s}
STEPS=${BENCH_STEPS:-"routes paced inprocess failover memory micro durable typed metrics"}
WRK=${WRK:-wrk}

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
# ensure_wrk installs Debian's wrk package when no wrk is on PATH, and fails
# with what to do when it cannot.
ensure_wrk() {
	command -v "$WRK" >/dev/null 2>&1 && return 0
	echo "wrk not found: installing the wrk package with apt-get"
	local sudo=""
	if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo="sudo -n"
	fi
	if command -v apt-get >/dev/null 2>&1 && { [[ $(id -u) -eq 0 ]] || [[ -n $sudo ]]; }; then
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 ||
			{ $sudo apt-get update -qq >/dev/null 2>&1 &&
				$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1; } || true
	fi
	if command -v "$WRK" >/dev/null 2>&1; then
		echo "installed $(command -v "$WRK") ($("$WRK" --version 2>&1 | head -1 | cut -d' ' -f1-2))"
		return 0
	fi
	echo "error: the routes step needs wrk ($WRK), and installing the wrk package gave none (apt-get missing" >&2
	echo "       or failed, or not root and no password-less sudo). Install it (Debian/Ubuntu: apt-get install" >&2
	echo "       wrk), set WRK=/path/to/wrk, or leave routes out of BENCH_STEPS." >&2
	return 1
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

if has routes || has durable; then
	ensure_wrk
fi

step "build"
$GO build -o "$BIN/testapp" ./e2e/testapp
$GO build -o "$BIN/routeapp" ./bench/routeapp
$GO build -tags mesh_nometrics -o "$BIN/routeapp-nometrics" ./bench/routeapp
$GO build -tags mesh_ackfrommemory -o "$BIN/routeapp-ackfrommemory" ./bench/routeapp
$GO build -o "$BIN/wrkroutes" ./bench/wrkroutes
$GO build -o "$BIN/loadgen" ./bench/loadgen
$GO build -o "$BIN/failover" ./bench/failover
$GO build -o "$BIN/typedwork" ./bench/typedwork
$GO test -c -o "$BIN/bench.test" ./bench/
$GO test -c -o "$BIN/recordlog.test" ./internal/recordlog/

if has routes; then
	step "1. routes on a real two-node cluster, driven by wrk"
	echo "wrk: $(command -v "$WRK"), $("$WRK" --version 2>&1 | head -1 | cut -d' ' -f1-2)" | tee "$OUT/routes.txt"
	profile=()
	[[ $PROFILE == 1 ]] && profile=(-profile)
	"$BIN/wrkroutes" -app "$BIN/routeapp" -wrk "$WRK" -c "$CONNECTIONS" -t "$WRK_THREADS" -warmup "$WARMUP" \
		-d "$WINDOW" -rounds "$ROUNDS" "${profile[@]}" -node-env "$NODE_ENV" -out "$OUT/routes" | tee -a "$OUT/routes.txt"
	for role in primary standby; do
		prof="$OUT/routes/cpu-two-$role.prof"
		[[ -s $prof ]] || continue
		$GO tool pprof -top -nodecount 40 "$prof" >"$OUT/pprof-top-routes-two-$role.txt" 2>/dev/null || true
		$GO tool pprof -top -cum -nodecount 300 "$prof" 2>/dev/null |
			grep -E 'Duration|flat%|meshgo\.dev/mesh' | head -45 >"$OUT/pprof-cum-mesh-routes-two-$role.txt" || true
	done
	echo "load after: $(load)" | tee -a "$OUT/routes.txt"
fi

if has paced; then
	step "2. p99 at one fixed request rate (bench/loadgen)"
	"$BIN/loadgen" -testapp "$BIN/testapp" -c "$CONNECTIONS" -warmup 500ms -d "$PACED_WINDOW" -rounds 1 \
		-scenarios plain,one-local -light-c 0 -paced-only -paced-rounds "$PACED_ROUNDS" -out "$OUT/paced" | tee "$OUT/paced.txt"
	echo "load after: $(load)" | tee -a "$OUT/paced.txt"
fi

if has inprocess; then
	step "3. in-process route cost and CPU profiles"
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
	step "4. failover timing"
	"$BIN/failover" -testapp "$BIN/testapp" -runs "$FAILOVER_RUNS" -out "$OUT/failover" | tee "$OUT/failover.txt"
	if [[ -n ${BENCH_ARBITER:-} ]]; then
		echo | tee -a "$OUT/failover.txt"
		"$BIN/failover" -testapp "$BIN/testapp" -runs "$FAILOVER_RUNS" -modes kill -arbiter "$BENCH_ARBITER" \
			-out "$OUT/failover-lease" | tee -a "$OUT/failover.txt"
	else
		echo "lease arbiter: not timed (set BENCH_ARBITER=postgres://... to time SIGKILL failover under the lease)" | tee -a "$OUT/failover.txt"
	fi
	echo "load after: $(load)" | tee -a "$OUT/failover.txt"
fi

if has memory; then
	step "5. heap under 200,000 records"
	(cd bench && "$BIN/bench.test" -test.run '^$' -test.bench 'Retention' -test.benchtime 1x -test.v) | tee "$OUT/memory.txt"
	# The durable store at the acceptance's scale: heap and goroutines
	# flat over 500,000 records (`make test` runs it at 20,000).
	MESH_TEST_FLAT_RECORDS=500000 $GO test -count=1 -timeout 20m -run '^TestLogStoreMemoryFlat$' -v ./internal/cluster/ | tee -a "$OUT/memory.txt"
	echo "load after: $(load)" | tee -a "$OUT/memory.txt"
fi

if has micro; then
	step "6. wire and handshake micro-benchmarks"
	$GO test -run '^$' -bench . -benchmem ./internal/wire/ ./internal/handshake/ | tee "$OUT/micro.txt"
	echo "load after: $(load)" | tee -a "$OUT/micro.txt"
fi

if has durable; then
	step "7. durable record store: log against memory against plain"
	d="$OUT/durable"
	mkdir -p "$d"
	{
		echo "disk fsync latency (append 4 KiB + fsync, on the disk of $OUT, where the nodes keep their state):"
		(cd "$d" && TMPDIR="$d" "$BIN/recordlog.test" -test.run '^$' -test.bench 'BenchmarkDiskFsync$' -test.benchtime 500x) |
			grep -E '^Benchmark'
	} | tee "$d/summary.txt"
	# Alternately, so that both stores see the same machine: memory with
	# plain, Clustered(1) and Clustered(2); log with plain and Clustered(1);
	# log with plain and Clustered(2), so its nodes' store counters are
	# Clustered(2)'s own (plain never touches the store).
	wr() { # name store scenarios [app]
		"$BIN/wrkroutes" -app "${4:-$BIN/routeapp}" -wrk "$WRK" -c "$CONNECTIONS" -t "$WRK_THREADS" -warmup "$WARMUP" \
			-d "$DURABLE_WINDOW" -rounds 1 -scenarios "$3" -node-env "MESH_CONTINUITY_STORE=$2 $NODE_ENV${WR_ENV:+ $WR_ENV}" \
			-out "$d/$1" >"$d/$1.txt" 2>&1 || { cat "$d/$1.txt"; return 1; }
		echo "--- $1 (MESH_CONTINUITY_STORE=$2${WR_ENV:+ $WR_ENV}${4:+, $(basename "$4")})"
		grep -E '^\|' "$d/$1.txt"
		for f in "$d/$1"/primary-*.log "$d/$1"/standby-*.log; do
			[[ -f $f ]] || continue
			grep -ho 'record store closed.*' "$f" | sed 's/^record store closed/  record store:/' |
				awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
					printf "%s  syncs per fsync %.1f\n", $0, (v["fsyncs"] > 0 ? v["syncs"] / v["fsyncs"] : 0) }' || true
		done
	}
	for r in $(seq 1 "$DURABLE_ROUNDS"); do
		wr "memory-$r" memory plain,one,two
		wr "log-$r" log plain,one
		wr "log-two-$r" log plain,two
		wr "log-two-onedisk-$r" log plain,two "$BIN/routeapp-ackfrommemory"
		WR_ENV=GOMAXPROCS=1 wr "log-oneproc-$r" log plain,one,two
	done | tee -a "$d/summary.txt"
	{
		echo
		echo "Clustered(2) at the two durability points, each window next to its own plain:"
		echo "| round | durability point | req/s | % of plain | p50 ms | p99 ms | CPU µs/req ingress | replica |"
		echo "|---|---|---:|---:|---:|---:|---:|---:|"
		for r in $(seq 1 "$DURABLE_ROUNDS"); do
			for v in "memory-$r:memory store (no disk)" "log-two-$r:both disks (product)" "log-two-onedisk-$r:one disk + peer memory"; do
				grep -h -m1 '^| two ' "$d/${v%%:*}.txt" | awk -F'|' -v r="$r" -v name="${v#*:}" '{
					gsub(/ *\[[^]]*\]/, "", $3); gsub(/ *\[[^]]*\]/, "", $4)
					printf "| %s | %s |%s|%s|%s|%s|%s|%s|\n", r, name, $3, $4, $5, $6, $9, $10 }'
			done
		done
		echo "disk: $(grep -m1 -E '^BenchmarkDiskFsync' "$d/summary.txt" | tr -s ' \t' ' ')"
	} | tee -a "$d/summary.txt"
	echo "(a syncs figure counts acknowledgements that waited on the store: on the ingress, before a record runs and before its response; on the replica, each prepare ack and Held answer, a batch of which shares one wait; with the one-disk build the replica waits for nothing; 'fsync_mean_us' is the time in fsync as the log saw it, 'fdatasyncs' how many of those fsyncs were fdatasyncs into preallocated space; a wait's mean splits into 'sync_wait_queued_us' (until the group commit carrying it began: the one in flight had to end), 'sync_wait_commit_us' (that commit's write and fsync) and 'sync_wait_wake_us' (until the waiting request ran again); counters span warm-up and window)" | tee -a "$d/summary.txt"
	echo "load after: $(load)" | tee -a "$d/summary.txt"
fi

if has typed; then
	step "8. typed submit→result round trip, and DBOS Transact Go's"
	t="$OUT/typed"
	mkdir -p "$t"
	"$BIN/typedwork" -c "$TYPED_CLIENTS" -warmup 500ms -d "$TYPED_WINDOW" -rounds "$TYPED_ROUNDS" \
		-node-env "$NODE_ENV" -out "$t/mesh" | tee "$t/summary.txt"
	if [[ $TYPED_DBOS != 1 ]]; then
		echo "DBOS comparison skipped (BENCH_TYPED_DBOS=$TYPED_DBOS)" | tee -a "$t/summary.txt"
	elif ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
		echo "DBOS comparison skipped: no PostgreSQL server binaries (initdb, pg_ctl) on this machine" | tee -a "$t/summary.txt"
	elif ! (cd bench/dbos && $GO build -o "$BIN/dbos" .) >"$t/dbos-build.txt" 2>&1; then
		echo "DBOS comparison skipped: bench/dbos did not build (see $t/dbos-build.txt)" | tee -a "$t/summary.txt"
	else
		echo | tee -a "$t/summary.txt"
		"$BIN/dbos" -c "$TYPED_CLIENTS" -warmup 500ms -d "$TYPED_WINDOW" -rounds "$TYPED_ROUNDS" | tee -a "$t/summary.txt"
		echo | tee -a "$t/summary.txt"
		"$BIN/dbos" -fast-pg -c "$TYPED_CLIENTS" -warmup 500ms -d "$TYPED_WINDOW" -rounds "$TYPED_ROUNDS" | tee -a "$t/summary.txt"
	fi
	echo "load after: $(load)" | tee -a "$t/summary.txt"
fi

if has metrics; then
	step "9. metrics: Clustered(1) with the metrics and with them compiled out"
	m="$OUT/metrics"
	mkdir -p "$m"
	# Alternately, so that both builds see the same machine; each run has
	# its own plain, so every ratio is to plain in the same window pair.
	wm() { # name app
		"$BIN/wrkroutes" -app "$2" -wrk "$WRK" -c "$CONNECTIONS" -t "$WRK_THREADS" -warmup "$WARMUP" \
			-d "$METRICS_WINDOW" -rounds 1 -scenarios plain,one -node-env "$NODE_ENV" \
			-out "$m/$1" >"$m/$1.txt" 2>&1 || { cat "$m/$1.txt"; return 1; }
		echo "--- $1"
		grep -E '^\|' "$m/$1.txt"
	}
	for r in $(seq 1 "$METRICS_ROUNDS"); do
		wm "with-metrics-$r" "$BIN/routeapp"
		wm "without-metrics-$r" "$BIN/routeapp-nometrics"
	done | tee "$m/summary.txt"
	echo "(without: the routeapp built with -tags mesh_nometrics, which compiles out the per-request metrics: the response writer that keeps the status, the route and submission counters and the latency histograms; /metrics still answers, with every counter at zero)" | tee -a "$m/summary.txt"
	echo "load after: $(load)" | tee -a "$m/summary.txt"
fi

# Keep bench.test: the CPU profiles are symbolized against it.
rm -f "$BIN/testapp" "$BIN/loadgen" "$BIN/failover" "$BIN/routeapp" "$BIN/routeapp-nometrics" "$BIN/routeapp-ackfrommemory" "$BIN/wrkroutes" "$BIN/typedwork" "$BIN/dbos"
step "done"
echo "results in $OUT"
