#!/usr/bin/env bash
# Regenerates website/captured/tooling-commands.md from the help text of the
# checkout's meshc. With --check, fails (exit 1) when the committed page
# differs from what meshc prints instead of writing it.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec go run ./website/scripts/docsgen tooling "$@"
