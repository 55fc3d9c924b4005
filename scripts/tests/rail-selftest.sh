#!/usr/bin/env bash
# rail-selftest.sh MODE — a tiny rail that exercises scripts/lib/rail.sh with
# no product involved. e2e/rails_test.go runs it with RAIL_ARTIFACT_ROOT set to
# a temp dir and checks the files it leaves behind.
#
# Modes:
#   ok          every phase passes (a command, a function, a filtered go test
#               that runs one test, a retained and sealed bundle)
#   timeout     the phase "sleepy" sleeps past its 1 s timeout
#   zero-tests  the phase "go-filter" runs `go test -run NoSuchTest`
#   skipped     the phase "go-filter" runs a test that skips, with --no-skip
#   redact      a command prints the planted secret; the rail passes and the
#               secret is redacted everywhere
#   leak        the planted secret is written into the bundle and the scan
#               (without redaction first) must name it
#   fail        the phase "broken" exits 3
#   drift       the phase "asserts" calls rail_drift with a reason
#   service     a service is started and must be gone after exit
#   interrupt   a service is started, then the phase "long" sleeps until the
#               test interrupts the rail (SIGINT); everything must be cleaned
set -euo pipefail

if [[ "${1:-}" == --help || "${1:-}" == -h || $# -ne 1 ]]; then
	sed -n '2,20p' "$0"
	[[ $# -eq 1 ]] && exit 0
	exit 2
fi
MODE="$1"

source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)/rail.sh"

PLANTED="postgres://planted:s3cr3t-$$-value@127.0.0.1:1/planted"

case "$MODE" in
ok) PHASES=(setup go-filter retain-bundle) ;;
redact) PHASES=(setup setup-echo go-filter retain-bundle) ;;
leak) PHASES=(setup leak-scan) ;;
timeout) PHASES=(setup sleepy) ;;
zero-tests | skipped) PHASES=(setup go-filter) ;;
fail) PHASES=(setup broken) ;;
drift) PHASES=(setup asserts) ;;
service) PHASES=(setup service-up) ;;
interrupt) PHASES=(setup service-up long) ;;
*)
	echo "unknown mode $MODE" >&2
	exit 2
	;;
esac

rail_init "${RAIL_SELFTEST_NAME:-selftest}" "${PHASES[@]}"
rail_secret DATABASE_URL "$PLANTED"

write_module() {
	local dir="$RAIL_TMP/mod"
	mkdir -p "$dir"
	printf 'module example.com/railselftest\n\ngo 1.21\n' >"$dir/go.mod"
	cat >"$dir/x_test.go" <<'EOF'
package railselftest

import "testing"

func TestOne(t *testing.T) {}

func TestSkipped(t *testing.T) { t.Skip("not today") }
EOF
	rail_set module_dir "$dir"
	echo "wrote module $dir"
}

print_secret() {
	echo "connecting to $PLANTED"
}

retain() {
	local b
	b="$(rail_bundle_begin selftest-bundle)"
	cp "$RAIL_VERIFY_DIR"/*.log "$b/"
	rail_bundle_seal
}

leak_scan() {
	local b
	b="$(rail_bundle_begin selftest-bundle)"
	mkdir -p "$b/nested"
	printf 'harmless\n' >"$b/a.txt"
	printf 'leaked=%s\n' "$PLANTED" >"$b/nested/planted.txt"
	rail_assert_no_secrets "$b"
}

rail_phase setup 30 write_module
case "$MODE" in
leak) rail_phase leak-scan 10 leak_scan ;;
ok | redact)
	if [[ "$MODE" == redact ]]; then
		rail_phase setup-echo 10 print_secret
	fi
	rail_phase_go_test go-filter 120 "$(rail_get module_dir)" -run '^TestOne$' .
	rail_phase retain-bundle 30 retain
	;;
timeout) rail_phase sleepy 1 sleep 30 ;;
zero-tests) rail_phase_go_test go-filter 120 "$(rail_get module_dir)" -run NoSuchTest . ;;
skipped) rail_phase_go_test go-filter 120 "$(rail_get module_dir)" --no-skip -run 'TestOne|TestSkipped' . ;;
fail) rail_phase broken 10 bash -c 'echo about to break; exit 3' ;;
drift)
	asserts() {
		echo "checking the answer"
		[[ 1 -eq 2 ]] || rail_drift "the answer was 1, expected 2"
		echo "not reached"
	}
	rail_phase asserts 10 asserts
	;;
service | interrupt)
	up() {
		rail_start_service sleeper "$RAIL_VERIFY_DIR/sleeper.log" SLEEPER_CONN="$PLANTED" SLEEPER_PASSWORD=unregistered-pw-value -- sleep 300
		echo "$(rail_get pid.sleeper)" >"$RAIL_DIR/sleeper.pid"
		echo "$RAIL_TMP" >"$RAIL_DIR/scratch.path"
	}
	rail_phase service-up 10 up
	if [[ "$MODE" == interrupt ]]; then
		long() {
			sleep 120 &
			echo "$!" >"$RAIL_DIR/long-child.pid"
			wait
		}
		rail_phase long 300 long
	fi
	;;
esac
rail_finish
