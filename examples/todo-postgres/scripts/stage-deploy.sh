#!/usr/bin/env bash
# Stages the deploy bundle of this project into <bundle-dir>: the binary
# <name>, the schema <name>.up.sql (from deploy/schema.up.sql) and the two
# helper scripts, and nothing else. <name> is the last element of the module
# path in go.mod.
#
#   bash scripts/stage-deploy.sh <bundle-dir>
#
# The binary is built straight into the bundle (meshc build . --output), so no
# binary is left in the source tree. Needs meshc on PATH.
set -euo pipefail

log() { printf '[stage-deploy] %s\n' "$*"; }
fail() {
  printf '[stage-deploy] %s\n' "$*" >&2
  exit 1
}

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
  echo "usage: bash scripts/stage-deploy.sh <bundle-dir>" >&2
  exit 1
fi
bundle_arg=$1
if [ -e "$bundle_arg" ] && [ ! -d "$bundle_arg" ]; then
  fail "bundle path exists but is not a directory: $bundle_arg"
fi

project_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v meshc >/dev/null 2>&1 || fail "meshc not found on PATH"
[ -f "$project_dir/go.mod" ] || fail "not a project directory (no go.mod): $project_dir"
module=$(awk '$1 == "module" { print $2; exit }' "$project_dir/go.mod")
[ -n "$module" ] || fail "go.mod has no module line: $project_dir/go.mod"
name=${module##*/}

sql="$project_dir/deploy/schema.up.sql"
apply="$project_dir/scripts/apply-deploy-migrations.sh"
smoke="$project_dir/scripts/deploy-smoke.sh"
for f in "$sql" "$apply" "$smoke"; do
  [ -f "$f" ] || fail "missing required file: $f"
done

in_place="$project_dir/$name"
if [ -e "$in_place" ]; then
  fail "source tree contains an in-place binary: $in_place (remove it; the bundle binary is built into the bundle)"
fi

mkdir -p "$bundle_arg"
bundle_dir=$(cd "$bundle_arg" && pwd)

log "building $name into $bundle_dir"
(cd "$project_dir" && meshc build . --output "$bundle_dir/$name")
if [ -e "$in_place" ]; then
  fail "source tree contains an in-place binary after the build: $in_place"
fi
[ -f "$bundle_dir/$name" ] && [ -x "$bundle_dir/$name" ] || fail "build produced no executable at $bundle_dir/$name"

cp "$sql" "$bundle_dir/$name.up.sql"
cp "$apply" "$bundle_dir/apply-deploy-migrations.sh"
cp "$smoke" "$bundle_dir/deploy-smoke.sh"
chmod 755 "$bundle_dir/$name" "$bundle_dir/apply-deploy-migrations.sh" "$bundle_dir/deploy-smoke.sh"
chmod 644 "$bundle_dir/$name.up.sql"

log "staged layout"
for f in "$name" "$name.up.sql" apply-deploy-migrations.sh deploy-smoke.sh; do
  log "- $bundle_dir/$f"
done
log "bundle ready dir=$bundle_dir"
