# shellcheck shell=bash
#
# rail.sh is the one runner shared by Mesh's proof rails (scripts/verify-*.sh).
# A rail sources it, names its expected phases with rail_init, runs every phase
# through rail_phase (or rail_phase_go_test) and ends with rail_finish.
#
# What a rail gets from this file:
#
#   .tmp/<rail>/verify/                 wiped at the start of every run
#     status.txt                        running -> ok | failed
#     current-phase.txt                 phase in progress; "complete" on success;
#                                       the failing phase on failure
#     phase-report.txt                  <phase>\t<started|passed|failed> lines
#     full-contract.log                 everything the rail printed
#     <label>.log                       one log per command; line 1 is "$ <command>"
#     latest-proof-bundle.txt           path of the last *successful* bundle; a
#                                       failed run keeps the previous value
#   .tmp/<rail>/proof-bundles/<prefix>-<UTC date>-<pid>/   dated proof bundle
#
#   - every phase and every command has a deadline; a command past it gets
#     "command timed out after Ns" appended to its log, TERM, then KILL after
#     1 s, and status 124;
#   - a filtered `go test -run` phase that ran zero tests fails;
#   - a failure prints "verification drift: <reason>", the failing log path and
#     an excerpt of that log, marks the phase failed and exits 1;
#   - secrets registered with rail_secret are replaced by <redacted:NAME> in
#     every retained log, and the bundle and verify directory are scanned
#     (grep -F) so that a leak fails the run instead of being assumed away;
#   - every process started through this file is killed on exit, and every
#     cleanup hook runs, whatever way the rail ends.
#
# Environment read here (knobs of the rails, never of the product):
#   RAIL_ARTIFACT_ROOT  where .tmp/<rail> lives (default: <repo>/.tmp); the
#                       library's own tests point it at a temp dir
#   RAIL_KEEP_BUNDLES   how many dated bundles to keep (default 5)
#   TMPDIR              parent of the private scratch dir (must be outside the repo)

RAIL_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RAIL_REPO_ROOT="$(cd "$RAIL_LIB_DIR/../.." && pwd)"

# ---------------------------------------------------------------------------
# Start and finish
# ---------------------------------------------------------------------------

# rail_args ARG... reads the command line of a rail that takes no arguments,
# before rail_init: --phases prints the rail's PHASES one a line and -h or
# --help its usage (the rail's usage function), both exiting 0; no argument
# goes on; anything else is refused, with the usage on stderr, exit 2.
rail_args() {
	case "${1:-}" in
	--phases)
		printf '%s\n' "${PHASES[@]}"
		exit 0
		;;
	-h | --help)
		usage
		exit 0
		;;
	"") ;;
	*)
		echo "$(basename "$0"): unknown argument: $1" >&2
		usage >&2
		exit 2
		;;
	esac
}

# rail_init NAME PHASE... prepares .tmp/NAME/verify, the scratch dir and the
# exit trap. PHASE... are the phases rail_finish requires a passed line for.
rail_init() {
	RAIL_NAME="$1"
	shift
	RAIL_EXPECTED_PHASES=("$@")
	RAIL_DIR="${RAIL_ARTIFACT_ROOT:-$RAIL_REPO_ROOT/.tmp}/$RAIL_NAME"
	RAIL_VERIFY_DIR="$RAIL_DIR/verify"
	RAIL_BUNDLES_DIR="$RAIL_DIR/proof-bundles"
	RAIL_POINTER="$RAIL_VERIFY_DIR/latest-proof-bundle.txt"
	RAIL_STARTED_AT="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

	mkdir -p "$RAIL_DIR" "$RAIL_BUNDLES_DIR"
	local lock="$RAIL_DIR/run.pid" other
	if [[ -f "$lock" ]]; then
		other="$(cat "$lock" 2>/dev/null || true)"
		if [[ "$other" =~ ^[0-9]+$ ]] && [[ "$other" != "$$" ]] && kill -0 "$other" 2>/dev/null; then
			echo "verification drift: another verify-$RAIL_NAME run is in progress (pid $other); wait for it or kill it" >&2
			exit 1
		fi
	fi
	echo "$$" >"$lock"

	# Keep the pointer to the last good bundle across the wipe.
	local previous_pointer=""
	[[ -f "$RAIL_POINTER" ]] && previous_pointer="$(cat "$RAIL_POINTER")"
	rm -rf "$RAIL_VERIFY_DIR"
	mkdir -p "$RAIL_VERIFY_DIR"
	[[ -n "$previous_pointer" ]] && printf '%s\n' "$previous_pointer" >"$RAIL_POINTER"

	echo running >"$RAIL_VERIFY_DIR/status.txt"
	echo init >"$RAIL_VERIFY_DIR/current-phase.txt"
	: >"$RAIL_VERIFY_DIR/phase-report.txt"

	RAIL_TMP="$(mktemp -d "${TMPDIR:-/tmp}/mesh-rail-$RAIL_NAME.XXXXXX")"
	chmod 700 "$RAIL_TMP"
	mkdir -p "$RAIL_TMP/state" "$RAIL_TMP/secrets" "$RAIL_TMP/pids"
	: >"$RAIL_TMP/cleanup"
	RAIL_TEE_PID=""
	trap rail__on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP

	# tee ignores INT/TERM (Ctrl-C must not kill the log before cleanup has
	# run) and keeps writing the log if the terminal side goes away (-p).
	exec > >(
		trap '' INT TERM HUP
		exec tee -a -p "$RAIL_VERIFY_DIR/full-contract.log"
	) 2>&1
	RAIL_TEE_PID=$!

	case "$RAIL_TMP/" in
	"$RAIL_REPO_ROOT"/*) rail_fail init "scratch dir $RAIL_TMP is inside the repo; set TMPDIR outside $RAIL_REPO_ROOT" "$RAIL_VERIFY_DIR/full-contract.log" ;;
	esac
	echo "verify-$RAIL_NAME: started $RAIL_STARTED_AT"
	echo "artifacts: $RAIL_VERIFY_DIR"
}

# rail_finish requires a passed line for every expected phase, writes the
# success state, points latest-proof-bundle.txt at this run's bundle and
# prints "verify-<rail>: ok".
rail_finish() {
	local phase report="$RAIL_VERIFY_DIR/phase-report.txt"
	for phase in "${RAIL_EXPECTED_PHASES[@]}"; do
		if ! grep -qxF "$phase"$'\tpassed' "$report"; then
			rail_fail final-gate "phase $phase has no passed marker in phase-report.txt" "$report"
		fi
	done
	local bundle
	bundle="$(rail_get bundle_dir)"
	if [[ -n "$bundle" ]]; then
		# The bundle also keeps the verify files of the run that produced it.
		mkdir -p "$bundle/verify"
		cp "$RAIL_VERIFY_DIR"/*.txt "$RAIL_VERIFY_DIR"/*.log "$bundle/verify/" 2>/dev/null || true
		rm -f "$bundle/verify/latest-proof-bundle.txt"
		rail_redact_tree "$bundle"
		local leak
		if ! leak="$(rail_scan_secrets "$bundle" "$RAIL_VERIFY_DIR")"; then
			rail_fail final-gate "retained artifacts leaked $leak" "$RAIL_VERIFY_DIR/full-contract.log"
		fi
		rail__write_manifest "$bundle"
		printf '%s\n' "$bundle" >"$RAIL_POINTER"
		rail__prune_bundles "$bundle"
	fi
	echo complete >"$RAIL_VERIFY_DIR/current-phase.txt"
	echo ok >"$RAIL_VERIFY_DIR/status.txt"
	[[ -n "$bundle" ]] && echo "proof bundle: $bundle"
	echo "verify-$RAIL_NAME: ok"
}

rail__on_exit() {
	local rc=$?
	set +e
	trap '' INT TERM HUP PIPE
	rail__stop_all_services
	rail__kill_running_commands
	local hook
	if [[ -s "$RAIL_TMP/cleanup" ]]; then
		# Hooks run last-registered first, each bounded.
		while IFS= read -r hook; do
			[[ -n "$hook" ]] || continue
			RAIL_TMP="$RAIL_TMP" RAIL_VERIFY_DIR="$RAIL_VERIFY_DIR" timeout 30 bash -c "for lib in '$RAIL_LIB_DIR'/*.sh; do source \"\$lib\"; done; $hook" >>"$RAIL_VERIFY_DIR/cleanup.log" 2>&1 </dev/null ||
				echo "cleanup hook failed: $hook" >>"$RAIL_VERIFY_DIR/cleanup.log"
		done < <(tac "$RAIL_TMP/cleanup")
	fi
	rail__mark_failed_bundle
	if [[ -f "$RAIL_VERIFY_DIR/status.txt" ]] && [[ "$(cat "$RAIL_VERIFY_DIR/status.txt")" == running ]]; then
		echo failed >"$RAIL_VERIFY_DIR/status.txt"
		local phase
		phase="$(cat "$RAIL_VERIFY_DIR/current-phase.txt" 2>/dev/null)"
		echo "verification drift: verify-$RAIL_NAME stopped during phase ${phase:-unknown} (exit status $rc)"
		echo "failing log: $RAIL_VERIFY_DIR/full-contract.log"
		[[ $rc -eq 0 ]] && rc=1
	fi
	[[ -f "$RAIL_VERIFY_DIR/cleanup.log" ]] && rail_redact_file "$RAIL_VERIFY_DIR/cleanup.log"
	rm -rf "$RAIL_TMP"
	rm -f "$RAIL_DIR/run.pid"
	if [[ -n "$RAIL_TEE_PID" ]]; then
		exec >&- 2>&-
		wait "$RAIL_TEE_PID" 2>/dev/null
	fi
	exit "$rc"
}

# rail__mark_failed_bundle, at exit of a run that did not succeed, labels the
# bundle it started (the pointer still names the last good one) and deletes it
# outright when it holds a registered secret.
rail__mark_failed_bundle() {
	local bundle
	bundle="$(rail_get bundle_dir)"
	[[ -n "$bundle" && -d "$bundle" ]] || return 0
	[[ "$(cat "$RAIL_VERIFY_DIR/status.txt" 2>/dev/null)" == ok ]] && return 0
	if ! rail_scan_secrets "$bundle" >/dev/null; then
		rm -rf "$bundle"
		echo "removed the unfinished bundle $bundle: it held a registered secret"
		return 0
	fi
	echo "this bundle belongs to a failed run; latest-proof-bundle.txt still names the last good one" >"$bundle/FAILED-RUN.txt"
}

# rail_on_exit 'function args' registers a cleanup hook. Hooks run in a fresh
# bash that has sourced every scripts/lib/*.sh (with RAIL_TMP and
# RAIL_VERIFY_DIR set), so they may call library functions and rail_get, and
# must take everything else from their arguments (quote them with %q).
rail_on_exit() {
	printf '%s\n' "$1" >>"$RAIL_TMP/cleanup"
}

# ---------------------------------------------------------------------------
# State shared between phases (phases run in subshells)
# ---------------------------------------------------------------------------

# rail_set KEY VALUE records a value for later phases.
rail_set() { printf '%s' "$2" >"$RAIL_TMP/state/$1"; }
# rail_get KEY prints a recorded value, or nothing.
rail_get() { [[ -f "$RAIL_TMP/state/$1" ]] && cat "$RAIL_TMP/state/$1"; return 0; }

# rail_secret NAME VALUE registers a value that must never survive in a
# retained file. It is kept only in the private scratch dir (mode 700).
rail_secret() {
	[[ -n "$2" ]] || return 0
	printf '%s' "$2" >"$RAIL_TMP/secrets/$1"
}

# ---------------------------------------------------------------------------
# Redaction
# ---------------------------------------------------------------------------

# rail_redact_file FILE... replaces every registered secret with
# <redacted:NAME> in place.
rail_redact_file() {
	[[ $# -gt 0 ]] || return 0
	compgen -G "$RAIL_TMP/secrets/*" >/dev/null || return 0
	python3 "$RAIL_LIB_DIR/redact.py" "$RAIL_TMP/secrets" "$@"
}

# rail_redact_tree DIR redacts every regular file below DIR.
rail_redact_tree() {
	local files=()
	mapfile -d '' files < <(find "$1" -type f -print0)
	[[ ${#files[@]} -gt 0 ]] && rail_redact_file "${files[@]}"
	return 0
}

# rail_scan_secrets DIR... succeeds when no file below DIR... contains a
# registered secret; otherwise prints "<NAME> (<file>)" and fails.
rail_scan_secrets() {
	local f name hit
	for f in "$RAIL_TMP"/secrets/*; do
		[[ -s "$f" ]] || continue
		name="$(basename "$f")"
		if hit="$(grep -rlF -f "$f" -- "$@" 2>/dev/null | head -n 1)" && [[ -n "$hit" ]]; then
			printf '%s (%s)\n' "$name" "$hit"
			return 1
		fi
	done
	return 0
}

# rail_assert_no_secrets DIR... records the drift "retained artifacts leaked
# <NAME> (<file>)" and fails when a registered secret is found below DIR...
rail_assert_no_secrets() {
	local leak
	if ! leak="$(rail_scan_secrets "$@")"; then
		rail_drift "retained artifacts leaked $leak"
		return 1
	fi
	echo "no registered secret found in: $*"
}

# ---------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------

rail__report() { printf '%s\t%s\n' "$1" "$2" >>"$RAIL_VERIFY_DIR/phase-report.txt"; }

# rail_phase PHASE TIMEOUT CMD... runs CMD (a command or a shell function)
# under TIMEOUT seconds with its output in <PHASE>.log, then records passed or
# fails the rail. A function may call rail_drift to give the reason.
rail_phase() {
	local phase="$1" timeout="$2"
	shift 2
	local log="$RAIL_VERIFY_DIR/$phase.log"
	rail__phase_begin "$phase"
	local rc t0=$SECONDS
	rail__errexit_save
	rail_run_command "$timeout" "$log" "$@"
	rc=$?
	rail__errexit_restore
	if [[ $rc -ne 0 ]]; then
		rail__phase_failed "$phase" "$timeout" "$rc" "$log"
	fi
	rail__report "$phase" passed
	echo "==> $phase: passed ($((SECONDS - t0))s)"
}

# rail_phase_go_test PHASE TIMEOUT DIR [--no-skip] GO-TEST-ARGS... runs `go
# test -v -count=1 ARGS` in DIR and fails the phase when no test passed (a -run
# filter that matches nothing is drift, not success). With --no-skip a skipped
# test or subtest fails the phase too.
rail_phase_go_test() {
	local phase="$1" timeout="$2" dir="$3" no_skip=0
	shift 3
	if [[ "${1:-}" == --no-skip ]]; then
		no_skip=1
		shift
	fi
	local log="$RAIL_VERIFY_DIR/$phase.log"
	rail__phase_begin "$phase"
	local rc t0=$SECONDS
	rail__errexit_save
	rail_run_command "$timeout" "$log" rail__in_dir "$dir" go test -v -count=1 "$@"
	rc=$?
	rail__errexit_restore
	if [[ $rc -ne 0 ]]; then
		rail__phase_failed "$phase" "$timeout" "$rc" "$log"
	fi
	local ran passed skipped
	ran="$(grep -c '^=== RUN' "$log" || true)"
	passed="$(grep -cE '^[[:space:]]*--- PASS' "$log" || true)"
	skipped="$(grep -cE '^[[:space:]]*--- SKIP' "$log" || true)"
	if [[ "${ran:-0}" -eq 0 || "${passed:-0}" -eq 0 ]]; then
		rail_fail "$phase" "named test filter ran 0 tests or produced malformed output" "$log"
	fi
	if [[ $no_skip -eq 1 && "${skipped:-0}" -gt 0 ]]; then
		rail_fail "$phase" "$skipped test(s) skipped: $(grep -E '^[[:space:]]*--- SKIP' "$log" | sed 's/^[[:space:]]*--- SKIP: //' | head -n 3 | tr '\n' ' ')" "$log"
	fi
	rail__report "$phase" passed
	echo "==> $phase: passed, $passed tests and subtests ($((SECONDS - t0))s)"
}

# rail__errexit_save / rail__errexit_restore bracket a call whose status is
# read afterwards: `set +e; cmd; rc=$?; set -e` without `cmd || rc=$?`, which
# would disable errexit inside every subshell cmd forks.
rail__errexit_save() {
	if [[ $- == *e* ]]; then RAIL__ERREXIT=1; else RAIL__ERREXIT=0; fi
	set +e
}
rail__errexit_restore() {
	[[ "${RAIL__ERREXIT:-0}" -eq 1 ]] && set -e
	return 0
}

rail__in_dir() {
	cd "$1" || return 1
	shift
	"$@"
}

rail__phase_begin() {
	local p known=0
	for p in "${RAIL_EXPECTED_PHASES[@]}"; do [[ "$p" == "$1" ]] && known=1; done
	if [[ $known -eq 0 ]]; then
		rail_fail "$1" "phase $1 is not in the rail's phase list (${RAIL_EXPECTED_PHASES[*]})" "$RAIL_VERIFY_DIR/full-contract.log"
	fi
	echo "$1" >"$RAIL_VERIFY_DIR/current-phase.txt"
	rail__report "$1" started
	rm -f "$RAIL_TMP/state/drift_reason" "$RAIL_TMP/state/failing_log"
	echo "==> $1: started"
}

rail__phase_failed() {
	local phase="$1" timeout="$2" rc="$3" log="$4" reason
	reason="$(rail_get drift_reason)"
	if [[ $rc -eq 124 ]]; then
		reason="command timed out after ${timeout}s${reason:+ ($reason)}"
	elif [[ -z "$reason" ]]; then
		reason="command exited with status $rc before ${timeout}s deadline"
	fi
	local nested
	nested="$(rail_get failing_log)"
	if [[ -n "$nested" && -f "$nested" && $rc -ne 124 ]]; then
		rail_fail "$phase" "$reason" "$nested" "phase log: $log"
	fi
	rail_fail "$phase" "$reason" "$log"
}

# rail_drift REASON, inside a phase function, records why the phase failed and
# returns 1 (so `rail_drift "..." ; ` under set -e ends the phase).
rail_drift() {
	rail_set drift_reason "$1"
	echo "drift: $1" >&2
	return 1
}

# rail_fail PHASE REASON LOG [HINT] fails the rail: status failed, the phase in
# current-phase.txt, the reason, the log path and an excerpt of the log.
rail_fail() {
	local phase="$1" reason="$2" log="$3" hint="${4:-}"
	[[ -f "$log" ]] && rail_redact_file "$log"
	echo failed >"$RAIL_VERIFY_DIR/status.txt"
	echo "$phase" >"$RAIL_VERIFY_DIR/current-phase.txt"
	rail__report "$phase" failed
	echo "verification drift: $reason"
	echo "failed phase: $phase"
	[[ -n "$hint" ]] && echo "artifact hint: $hint"
	echo "failing log: $log"
	rail_excerpt "$log"
	exit 1
}

# rail_excerpt LOG prints the log, or its first 160 and last 80 lines.
rail_excerpt() {
	[[ -f "$1" ]] || {
		echo "(log $1 does not exist)"
		return 0
	}
	local n
	n="$(wc -l <"$1")"
	echo "----- excerpt of $1 -----"
	if [[ $n -le 240 ]]; then
		cat "$1"
	else
		head -n 160 "$1"
		echo "... skipped $((n - 240)) lines ..."
		tail -n 80 "$1"
	fi
	echo "----- end of excerpt -----"
}

# ---------------------------------------------------------------------------
# Commands and services
# ---------------------------------------------------------------------------

# rail_run_command TIMEOUT LOG CMD... runs CMD in its own process group with
# stdin from /dev/null and stdout+stderr appended to LOG (whose first line is
# the shell-quoted command). Returns CMD's status, or 124 after appending
# "command timed out after TIMEOUTs", TERM, 1 s, KILL. Whatever CMD leaves
# running in its process group is killed when it returns: long-lived
# processes are started with rail_start_service (or rail_detach), which give
# them their own group.
rail_run_command() {
	local timeout="$1" log="$2"
	shift 2
	rail__command_header "$log" "" "$@"
	local had_m=0 pid rc=0
	[[ $- == *m* ]] && had_m=1
	set -m
	# The child turns errexit on itself: callers spawn it with errexit off
	# (rail__errexit_save), because a subshell forked inside `a || b` would
	# silently ignore errexit for its whole life.
	(
		set -e
		"$@"
	) >>"$log" 2>&1 </dev/null &
	pid=$!
	[[ $had_m -eq 1 ]] || set +m
	echo "$pid" >"$RAIL_TMP/pids/cmd.$pid"
	local deadline=$(($(rail__now_us) + timeout * 1000000))
	while kill -0 "$pid" 2>/dev/null; do
		if [[ $(rail__now_us) -ge $deadline ]]; then
			echo "command timed out after ${timeout}s" >>"$log"
			kill -TERM -- "-$pid" 2>/dev/null
			local i
			for i in 1 2 3 4 5 6 7 8 9 10; do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL -- "-$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			rc=124
			break
		fi
		sleep 0.1
	done
	if [[ $rc -ne 124 ]]; then
		wait "$pid" 2>/dev/null || rc=$?
		# Reap stragglers the command left in its group.
		kill -KILL -- "-$pid" 2>/dev/null
	fi
	rm -f "$RAIL_TMP/pids/cmd.$pid"
	[[ $rc -ne 0 ]] && echo "exit status $rc" >>"$log"
	rail_redact_file "$log"
	return "$rc"
}

# rail_cmd [--env NAME=VALUE]... LABEL TIMEOUT CMD... runs one command inside
# a phase with its own <LABEL>.log. NAME=VALUE pairs reach the command only
# through its environment (they are never on a command line) and are shown
# redacted in the log header. On failure the log becomes the phase's failing
# log and the reason is recorded.
rail_cmd() {
	local envs=()
	while [[ "${1:-}" == --env ]]; do
		envs+=("$2")
		shift 2
	done
	local label="$1" timeout="$2"
	shift 2
	local log="$RAIL_VERIFY_DIR/$label.log" rc
	rail__errexit_save
	rail_run_command "$timeout" "$log" rail__with_env "${#envs[@]}" "${envs[@]}" "$@"
	rc=$?
	rail__errexit_restore
	if [[ $rc -ne 0 ]]; then
		rail_set failing_log "$log"
		if [[ $rc -eq 124 ]]; then
			rail_set drift_reason "$label: command timed out after ${timeout}s"
		else
			rail_set drift_reason "$label: command exited with status $rc before ${timeout}s deadline"
		fi
		echo "$label failed (status $rc); log: $log"
	fi
	return "$rc"
}

rail__with_env() {
	local n="$1" kv
	shift
	while [[ $n -gt 0 ]]; do
		kv="$1"
		export "${kv%%=*}=${kv#*=}"
		shift
		n=$((n - 1))
	done
	"$@"
}

rail__command_header() {
	local log="$1" envs="$2"
	shift 2
	# rail__with_env N VAR=... is shown as "VAR=... cmd".
	if [[ "${1:-}" == rail__with_env ]]; then
		local n="$2"
		shift 2
		local shown=() name
		while [[ $n -gt 0 ]]; do
			name="${1%%=*}"
			# Values of credential-like variables are never shown, registered
			# secret or not (PGPASSWORD from a DATABASE_URL, for one).
			if [[ "$name" =~ (PASS|SECRET|TOKEN|COOKIE|CREDENTIAL|DATABASE_URL) ]]; then
				shown+=("$name=<hidden>")
			else
				shown+=("$1")
			fi
			shift
			n=$((n - 1))
		done
		printf '$ %s%s\n' "${shown[*]:+${shown[*]} }" "$(rail__quote "$@")" >"$log"
	else
		printf '$ %s\n' "$(rail__quote "$@")" >"$log"
	fi
	rail_redact_file "$log"
}

rail__quote() {
	local out="" a
	for a in "$@"; do
		out+="$(printf '%q' "$a") "
	done
	printf '%s' "${out% }"
}

# rail_start_service NAME LOG [NAME=VALUE]... -- CMD... starts a long-running
# process (a node) in its own process group; NAME=VALUE pairs reach it only
# through its environment. It is killed on exit. Its pid is `rail_get pid.NAME`.
rail_start_service() {
	local name="$1" log="$2"
	shift 2
	local envs=()
	while [[ $# -gt 0 && "$1" != -- ]]; do
		envs+=("$1")
		shift
	done
	[[ "${1:-}" == -- ]] && shift
	rail__command_header "$log" "" rail__with_env "${#envs[@]}" "${envs[@]}" "$@"
	local had_m=0 pid
	[[ $- == *m* ]] && had_m=1
	set -m
	(
		for kv in "${envs[@]}"; do export "${kv%%=*}=${kv#*=}"; done
		exec "$@"
	) >>"$log" 2>&1 </dev/null &
	pid=$!
	[[ $had_m -eq 1 ]] || set +m
	echo "$pid" >"$RAIL_TMP/pids/svc.$name"
	rail_set "pid.$name" "$pid"
	rail_set "log.$name" "$log"
	echo "started $name pid=$pid log=$log"
}

# rail_detach LOG CMD... runs CMD to completion in a process group of its own,
# so that daemons it leaves behind (pg_ctl start) outlive the calling phase.
rail_detach() {
	local log="$1" had_m=0 pid rc
	shift
	[[ $- == *m* ]] && had_m=1
	set -m
	("$@") >>"$log" 2>&1 </dev/null &
	pid=$!
	[[ $had_m -eq 1 ]] || set +m
	wait "$pid"
	rc=$?
	return "$rc"
}

# rail_stop_service NAME [SIGNAL] sends SIGNAL (default TERM) to the service,
# waits up to 10 s for it to exit (then KILLs it) and forgets it.
rail_stop_service() {
	local name="$1" sig="${2:-TERM}" pid
	pid="$(rail_get "pid.$name")"
	[[ -n "$pid" ]] || return 0
	kill "-$sig" "$pid" 2>/dev/null
	local i
	for i in $(seq 1 100); do
		rail__alive "$pid" || break
		sleep 0.1
	done
	if rail__alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null
		sleep 0.2
	fi
	rm -f "$RAIL_TMP/pids/svc.$name" "$RAIL_TMP/state/pid.$name"
	local log
	log="$(rail_get "log.$name")"
	[[ -n "$log" && -f "$log" ]] && rail_redact_file "$log"
	echo "stopped $name pid=$pid signal=$sig"
}

# rail_service_alive NAME succeeds while the service's process exists.
rail_service_alive() {
	local pid
	pid="$(rail_get "pid.$1")"
	[[ -n "$pid" ]] && rail__alive "$pid"
}

# rail__alive PID is true while PID exists and is not a zombie (services may be
# started by a phase subshell that is gone, so wait is not available).
rail__alive() {
	local st
	[[ -r /proc/$1/stat ]] || return 1
	st="$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)"
	[[ -n "$st" && "$st" != Z && "$st" != X ]]
}

rail__stop_all_services() {
	local f pid
	for f in "$RAIL_TMP"/pids/svc.*; do
		[[ -f "$f" ]] || continue
		pid="$(cat "$f")"
		kill -KILL "$pid" 2>/dev/null
		kill -KILL -- "-$pid" 2>/dev/null
		rm -f "$f"
	done
	for f in "$RAIL_TMP"/state/log.*; do
		[[ -f "$f" && -f "$(cat "$f")" ]] && rail_redact_file "$(cat "$f")"
	done
	return 0
}

rail__kill_running_commands() {
	local f pid
	for f in "$RAIL_TMP"/pids/cmd.*; do
		[[ -f "$f" ]] || continue
		pid="$(cat "$f")"
		kill -TERM -- "-$pid" 2>/dev/null
		sleep 0.2
		kill -KILL -- "-$pid" 2>/dev/null
		rm -f "$f"
	done
	return 0
}

# ---------------------------------------------------------------------------
# Waiting
# ---------------------------------------------------------------------------

# rail__now_us prints the wall clock in microseconds (EPOCHREALTIME without
# its locale-dependent radix character).
rail__now_us() { printf '%s' "${EPOCHREALTIME//[!0-9]/}"; }

# rail_poll BUDGET INTERVAL WHAT CMD... reruns CMD every INTERVAL seconds until
# it succeeds or BUDGET seconds pass; then it records the drift
# "timed out after BUDGETs waiting for WHAT" (with CMD's last output) and fails.
# CMD runs in a condition, where errexit is off: it must return 1 explicitly.
rail_poll() {
	local budget="$1" interval="$2" what="$3"
	shift 3
	local deadline=$(($(rail__now_us) + budget * 1000000)) out tries=0
	rm -f "$RAIL_TMP/state/poll_abort"
	while :; do
		tries=$((tries + 1))
		if out="$("$@" 2>&1)"; then
			[[ -n "$out" ]] && printf '%s\n' "$out"
			echo "ready: $what (after $tries tries)"
			return 0
		fi
		if [[ -f "$RAIL_TMP/state/poll_abort" ]]; then
			printf '%s\n' "$out"
			rail_drift "$(rail_get poll_abort)"
			return 1
		fi
		if [[ $(rail__now_us) -ge $deadline ]]; then
			printf '%s\n' "$out"
			rail_drift "timed out after ${budget}s waiting for $what: $(printf '%s' "$out" | tail -n 1)"
			return 1
		fi
		sleep "$interval"
	done
}

# rail_poll_abort REASON, inside a rail_poll predicate, stops the poll at once
# with REASON (for conditions no amount of waiting can fix).
rail_poll_abort() {
	rail_set poll_abort "$1"
	echo "$1"
	return 1
}

# rail_free_port prints a TCP port free on 127.0.0.1 (and on ::1 when
# --dual-stack is given, so two nodes can share it on both loopbacks). Ports
# come from 24000 to 32000: below the kernel's ephemeral range, so no
# outgoing connection can be given the port before the rail's node binds it,
# and apart from the 10000 to 24000 that Go tests take (meshtest.FreePort),
# so a rail started by a test never meets a test binary's port.
rail_free_port() {
	python3 - "${1:-}" <<'PY'
import random, socket, sys
dual = sys.argv[1] == "--dual-stack"
for _ in range(200):
    port = random.randrange(24000, 32000)
    s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s4.bind(("127.0.0.1", port))
    except OSError:
        s4.close()
        continue
    ok = True
    if dual:
        try:
            s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s6.bind(("::1", port))
            s6.close()
        except OSError:
            ok = False
    s4.close()
    if ok:
        print(port)
        sys.exit(0)
sys.exit("no free port found")
PY
}

# ---------------------------------------------------------------------------
# Proof bundles
# ---------------------------------------------------------------------------

# rail_bundle_begin PREFIX creates this run's dated bundle dir and prints it.
rail_bundle_begin() {
	local dir
	dir="$RAIL_BUNDLES_DIR/$1-$(date -u +%Y%m%dT%H%M%SZ)-$$"
	mkdir -p "$dir"
	rail_set bundle_dir "$dir"
	printf '%s\n' "$dir"
}

# rail_bundle_dir prints this run's bundle dir (empty before rail_bundle_begin).
rail_bundle_dir() { rail_get bundle_dir; }

# rail_bundle_seal redacts every file of the bundle, proves that no registered
# secret survives there or in the verify dir, and writes manifest.tsv.
rail_bundle_seal() {
	local bundle
	bundle="$(rail_get bundle_dir)"
	[[ -d "$bundle" ]] || rail_drift "no proof bundle was started" || return 1
	rail_redact_tree "$bundle"
	rail_redact_tree "$RAIL_VERIFY_DIR"
	rail_assert_no_secrets "$bundle" "$RAIL_VERIFY_DIR" || return 1
	rail__write_manifest "$bundle"
	echo "bundle sealed: $bundle ($(wc -l <"$bundle/manifest.tsv") files, no secret found)"
}

rail__write_manifest() {
	(
		cd "$1" || exit 1
		find . -type f ! -name manifest.tsv -printf '%P\n' | LC_ALL=C sort | while IFS= read -r f; do
			printf '%s\t%s\t%s\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"
		done >manifest.tsv
	)
}

rail__prune_bundles() {
	local keep="${RAIL_KEEP_BUNDLES:-5}" current="$1" d n=0
	while IFS= read -r d; do
		n=$((n + 1))
		if [[ $n -gt $keep && "$d" != "$current" ]]; then
			rm -rf "$d"
		fi
	done < <(ls -1dt "$RAIL_BUNDLES_DIR"/*/ 2>/dev/null | sed 's:/$::')
}

# ---------------------------------------------------------------------------
# Preconditions
# ---------------------------------------------------------------------------

# rail_require_tools TOOL... fails the current phase when a tool is missing.
rail_require_tools() {
	local t missing=()
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	if [[ ${#missing[@]} -gt 0 ]]; then
		rail_drift "required tools not on PATH: ${missing[*]}"
		return 1
	fi
	echo "tools present: $*"
}
