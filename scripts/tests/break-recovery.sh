#!/usr/bin/env bash
# break-recovery.sh COPY_DIR — copies this checkout (without .git, .tmp and the
# website) to COPY_DIR and disables automatic recovery in the copy: the
# standby still promotes itself when the primary is lost, but never re-runs
# the in-flight work (the call to recoverOrphans in peerLost is removed).
#
# Used by TestFailoverRailCatchesDisabledRecovery (e2e/rails_test.go) and by
# hand:
#
#   bash scripts/tests/break-recovery.sh /tmp/mesh-broken
#   (cd /tmp/mesh-broken && bash scripts/verify-failover.sh)
#
# Expected: the rail fails with current-phase.txt = recovery and
# "verification drift: timed out after 45s waiting for automatic_recovery ...".
# The original checkout is never modified.
set -euo pipefail

if [[ $# -ne 1 || "$1" == -h || "$1" == --help ]]; then
	sed -n '2,15p' "$0"
	[[ $# -eq 1 ]] && exit 0
	exit 2
fi

src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dst="$1"
if [[ -e "$dst" ]]; then
	echo "break-recovery.sh: $dst already exists" >&2
	exit 1
fi
case "$(realpath -m "$dst")/" in
"$src"/*)
	echo "break-recovery.sh: $dst is inside the checkout" >&2
	exit 1
	;;
esac

mkdir -p "$dst"
for entry in "$src"/* "$src"/.[!.]*; do
	[[ -e "$entry" ]] || continue
	case "$(basename "$entry")" in
	.git | .tmp | website) continue ;;
	esac
	cp -a "$entry" "$dst/"
done

target="$dst/internal/cluster/failover.go"
call='		n.recoverOrphans(peer)'
count="$(grep -cxF "$call" "$target" || true)"
if [[ "$count" != 1 ]]; then
	echo "break-recovery.sh: expected exactly one line '$call' in internal/cluster/failover.go, found ${count:-0}; update this script to the new recovery call site" >&2
	exit 1
fi
python3 - "$target" "$call" <<'PY'
import sys
path, call = sys.argv[1], sys.argv[2]
text = open(path).read()
text = text.replace(call + "\n", "\t\t_ = peer // recovery disabled by scripts/tests/break-recovery.sh\n", 1)
open(path, "w").write(text)
PY
(cd "$dst" && go build . ./internal/cluster ./cmd/meshc)
echo "broken copy ready: $dst (automatic recovery disabled in internal/cluster/failover.go)"
