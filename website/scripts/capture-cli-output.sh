#!/usr/bin/env bash
# Regenerates website/captured/*.txt: builds meshc from the checkout, generates
# the hello and clustered projects, starts a primary (primary@127.0.0.1:P) and
# a standby (standby@[::1]:P, seed localhost) on loopback and records what
# meshc init/build and the operator commands print. The random port P is shown
# as 4370 and times as <timestamp>.
# With --check, fails (exit 1) when the committed files differ from what the
# product prints now, instead of writing them. --keep keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec go run ./website/scripts/docsgen capture "$@"
