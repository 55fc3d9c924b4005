#!/usr/bin/env bash
# Installs what `make test` needs beyond Go, from the package registries the
# machine reaches: the docs site's npm packages (from website/package-lock.json),
# Debian's Chromium for the browser test, and zsh and fish for the tests of
# meshc's completion scripts. PostgreSQL binaries (initdb, pg_ctl) come from
# Debian's postgresql package when missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

need_apt=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need_apt+=(chromium)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# meshc completion's tests check the zsh and fish scripts with the shells.
command -v zsh >/dev/null 2>&1 || need_apt+=(zsh)
command -v fish >/dev/null 2>&1 || need_apt+=(fish)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "ensure-deps: installing ${need_apt[*]} from Debian's packages"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "ensure-deps: missing ${need_apt[*]}; install them with: sudo apt-get install -y ${need_apt[*]}" >&2
  fi
fi

if [ -f "$root/website/package-lock.json" ] && [ ! -d "$root/website/node_modules" ]; then
  echo "ensure-deps: npm ci in website/"
  npm --prefix "$root/website" ci --no-audit --no-fund --loglevel=error
fi
