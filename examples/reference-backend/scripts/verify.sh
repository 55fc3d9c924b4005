#!/usr/bin/env bash
# verify.sh — the reference backend's own check: formatting, vet, unit tests
# (PostgreSQL tests on DATABASE_URL's server or a throwaway one; with
# MESH_REQUIRE_POSTGRES=1 a missing PostgreSQL fails them) and a build.
# The clustered proof (a pair, 200 jobs, a killed owner) is the repo's
# scripts/verify-backend.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

unformatted="$(gofmt -l .)"
if [[ -n "$unformatted" ]]; then
	echo "verify: gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...
go test -count=1 ./...
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
go build -o "$out/reference-backend" .
echo "reference-backend: verify ok"
