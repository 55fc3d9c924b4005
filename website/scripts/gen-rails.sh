#!/usr/bin/env bash
# Regenerates website/captured/rail-*.txt from the proof rails themselves: the
# text `bash scripts/verify-<rail>.sh --help` prints and the phases each rail
# runs, in order. With --check, fails (exit 1) when the committed files differ
# instead of writing them.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec go run ./website/scripts/docsgen rails "$@"
