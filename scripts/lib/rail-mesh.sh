# shellcheck shell=bash
#
# rail-mesh.sh holds the Mesh-specific helpers of the proof rails: building
# meshc, PostgreSQL (a throwaway server or an isolated database carved out of
# DATABASE_URL), HTTP captures, operator queries and JSON checks. It builds on
# rail.sh and has no side effect when sourced.
#
# Every helper here is meant to run inside a phase function (rail_phase), so
# failures are reported with rail_drift and a non-zero return.

# rail_py [-f FILE] ARGS... runs the Python check read from stdin (or FILE)
# with rail_json on its path. Its output goes to the phase log; a failing
# check's last line ("drift: ...") becomes the phase's drift reason.
rail_py() {
	local out rc script=-
	if [[ "${1:-}" == -f ]]; then
		script="$2"
		shift 2
	fi
	rail__errexit_save
	out="$(PYTHONPATH="$RAIL_LIB_DIR" python3 "$script" "$@" 2>&1)"
	rc=$?
	rail__errexit_restore
	[[ -n "$out" ]] && printf '%s\n' "$out"
	if [[ $rc -ne 0 ]]; then
		local last
		last="$(printf '%s\n' "$out" | tail -n 1)"
		rail_drift "${last#drift: }"
		return 1
	fi
	return 0
}

# rail_http LABEL METHOD URL [JSON-BODY] makes one HTTP request (10 s cap) and
# keeps <LABEL>.status, <LABEL>.headers and <LABEL>.body in the verify dir.
# It fails only when no HTTP answer arrived; check the status with rail_py.
rail_http() {
	local label="$1" method="$2" url="$3" body="${4:-}" p="$RAIL_VERIFY_DIR/$1"
	local args=(-sS -X "$method" --max-time 10 -o "$p.body" -D "$p.headers" -w '%{http_code}')
	[[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' --data "$body")
	local code rc
	rail__errexit_save
	code="$(curl "${args[@]}" "$url" 2>"$p.curl.log")"
	rc=$?
	rail__errexit_restore
	printf '%s\n' "$code" >"$p.status"
	echo "$method $url -> ${code:-no answer} (curl status $rc)"
	if [[ $rc -ne 0 ]]; then
		rail_drift "$method $url got no HTTP answer (curl status $rc: $(tail -n 1 "$p.curl.log"))"
		return 1
	fi
}

# ---------------------------------------------------------------------------
# meshc
# ---------------------------------------------------------------------------

# rail_build_meshc builds meshc from this checkout into the scratch dir, or
# takes MESHC_BIN when it names an executable (a parent rail passes its build
# down so one run builds meshc once). Sets state meshc.
rail_build_meshc() {
	if [[ -n "${MESHC_BIN:-}" ]]; then
		[[ -x "$MESHC_BIN" ]] || rail_drift "MESHC_BIN=$MESHC_BIN is not an executable" || return 1
		rail_set meshc "$MESHC_BIN"
		echo "using prebuilt meshc $MESHC_BIN"
		"$MESHC_BIN" version || true
		return 0
	fi
	mkdir -p "$RAIL_TMP/bin"
	rail_cmd build-meshc.go 600 rail__in_dir "$RAIL_REPO_ROOT" go build -o "$RAIL_TMP/bin/meshc" ./cmd/meshc || return 1
	rail_set meshc "$RAIL_TMP/bin/meshc"
	echo "built $RAIL_TMP/bin/meshc"
	"$RAIL_TMP/bin/meshc" version || true
}

# rail_cluster LABEL VERB NODE [ARGS...] runs `meshc cluster VERB NODE --json
# ARGS` with the cookie from state (only through MESH_CLUSTER_COOKIE) and keeps
# the document in <LABEL>.json; stderr goes to <LABEL>.log.
rail_cluster() {
	local label="$1" verb="$2" node="$3"
	shift 3
	local json="$RAIL_VERIFY_DIR/$label.json"
	rm -f "$json"
	rail_cmd --env "MESH_CLUSTER_COOKIE=$(rail_get cookie)" "$label" 20 \
		rail__stdout_to "$json" "$(rail_get meshc)" cluster "$verb" "$node" --json --timeout-ms 5000 "$@"
}

# rail_pair_status TAG reads the status of the primary and of the standby
# (status-primary-TAG.json, status-standby-TAG.json in the verify dir) and
# runs the Python check on stdin (rail_py) with arg(1), arg(2) those two
# files and arg(3), arg(4) the two node names. It returns 1 when a query or
# the check fails, so it can be polled with rail_poll.
rail_pair_status() {
	local tag="$1" p s
	p="$(rail_get primary)"
	s="$(rail_get standby)"
	rail_cluster "status-primary-$tag" status "$p" || return 1
	rail_cluster "status-standby-$tag" status "$s" || return 1
	rail_py "$RAIL_VERIFY_DIR/status-primary-$tag.json" "$RAIL_VERIFY_DIR/status-standby-$tag.json" "$p" "$s"
}

rail__stdout_to() {
	local out="$1"
	shift
	"$@" >"$out"
}

# rail_new_cookie registers a fresh random cluster cookie as a secret.
rail_new_cookie() {
	local cookie
	cookie="mesh-rail-cookie-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	rail_set cookie "$cookie"
	rail_secret MESH_CLUSTER_COOKIE "$cookie"
}

# rail_wait_health SERVICE URL BUDGET waits for GET URL to answer 200 with
# status=ok and db_backend=postgres, failing at once when SERVICE exits.
rail_wait_health() {
	local svc="$1" url="$2" budget="$3"
	rail_poll "$budget" 0.25 "$svc health at $url" rail__health_once "$svc" "$url"
}

rail__health_once() {
	local svc="$1" url="$2" body
	if ! rail_service_alive "$svc"; then
		rail_set failing_log "$(rail_get "log.$svc")"
		rail_poll_abort "$svc exited before becoming healthy (see $(rail_get "log.$svc"))"
		return 1
	fi
	body="$(curl -sS --max-time 2 "$url" 2>&1)" || {
		echo "not yet: $body"
		return 1
	}
	RAIL__BODY="$body" python3 -c '
import json, os, sys
b = json.loads(os.environ["RAIL__BODY"])
sys.exit(0 if b.get("status") == "ok" and b.get("db_backend") == "postgres" else 1)' 2>/dev/null || {
		echo "not ready: $body"
		return 1
	}
	echo "healthy: $body"
}

# rail_placement_owner KEY NODE... prints the owner the runtime's placement
# (internal/continuity/placement.go) gives KEY over NODE...: members sorted by
# (first 8 bytes of SHA-256 as a big-endian integer, name), owner index =
# SHA-256("request::" + KEY) mod members.
rail_placement_owner() {
	python3 - "$@" <<'PY'
import hashlib, sys
key, members = sys.argv[1], sys.argv[2:]
h = lambda s: int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "big")
members = sorted(set(members), key=lambda m: (h(m), m))
print(members[h("request::" + key) % len(members)])
PY
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# rail_pg_envs URL prints the libpq environment (PGHOST=..., one per line)
# equivalent to a postgres:// URL, so psql never sees the URL on its command
# line.
rail_pg_envs() {
	RAIL__URL="$1" python3 - <<'PY'
import os, sys
from urllib.parse import urlsplit, unquote, parse_qsl
u = urlsplit(os.environ["RAIL__URL"])
if u.scheme not in ("postgres", "postgresql"):
    sys.exit("DATABASE_URL must start with postgres:// or postgresql://")
env = {}
if u.hostname: env["PGHOST"] = unquote(u.hostname)
if u.port: env["PGPORT"] = str(u.port)
if u.username: env["PGUSER"] = unquote(u.username)
if u.password is not None: env["PGPASSWORD"] = unquote(u.password)
db = unquote(u.path.lstrip("/"))
if db: env["PGDATABASE"] = db
params = {
    "host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
    "dbname": "PGDATABASE", "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "sslcrl": "PGSSLCRL",
    "connect_timeout": "PGCONNECT_TIMEOUT", "application_name": "PGAPPNAME",
    "options": "PGOPTIONS", "target_session_attrs": "PGTARGETSESSIONATTRS",
    "channel_binding": "PGCHANNELBINDING", "gssencmode": "PGGSSENCMODE",
    "sslnegotiation": "PGSSLNEGOTIATION", "passfile": "PGPASSFILE",
}
for k, v in parse_qsl(u.query, keep_blank_values=True):
    if k not in params:
        sys.exit(f"DATABASE_URL parameter {k} is not supported by the rail's psql bridge")
    env[params[k]] = v
env.setdefault("PGCONNECT_TIMEOUT", "10")
for k, v in env.items():
    if "\n" in v:
        sys.exit("DATABASE_URL holds a newline")
    print(f"{k}={v}")
PY
}

# rail_psql LABEL URL TIMEOUT PSQL-ARGS... runs psql against URL (passed as
# libpq environment) with its own <LABEL>.log.
rail_psql() {
	local label="$1" url="$2" timeout="$3"
	shift 3
	local lines kv envs=()
	lines="$(rail_pg_envs "$url")" || {
		rail_drift "$lines"
		return 1
	}
	while IFS= read -r kv; do
		[[ -n "$kv" ]] && envs+=(--env "$kv")
	done <<<"$lines"
	rail_cmd "${envs[@]}" "$label" "$timeout" psql -X -v ON_ERROR_STOP=1 "$@"
}

# rail_pg_bin TOOL prints the path of a PostgreSQL server tool (initdb,
# pg_ctl): from PATH, else the newest /usr/lib/postgresql/*/bin.
rail_pg_bin() {
	local p
	if p="$(command -v "$1")"; then
		echo "$p"
		return 0
	fi
	p="$(ls -1d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n 1)"
	[[ -n "$p" && -x "$p" ]] && echo "$p"
}

# rail__as_pg prints the prefix that runs a command as the postgres user when
# we are root (PostgreSQL refuses to run as root).
rail__as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		printf '%s\n' runuser -u postgres --
	fi
}

# rail_pg_start_throwaway starts a private PostgreSQL on 127.0.0.1 and a free
# port in a temp dir outside the repo, registers its stop-and-remove hook and
# sets state admin_url (also registered as the DATABASE_URL secret).
rail_pg_start_throwaway() {
	local initdb pg_ctl
	initdb="$(rail_pg_bin initdb)"
	pg_ctl="$(rail_pg_bin pg_ctl)"
	[[ -n "$initdb" && -n "$pg_ctl" ]] ||
		rail_drift "DATABASE_URL is unset and no initdb/pg_ctl was found on PATH or in /usr/lib/postgresql/*/bin; install the PostgreSQL server or set DATABASE_URL" || return 1
	local as_pg=()
	mapfile -t as_pg < <(rail__as_pg)
	if [[ ${#as_pg[@]} -gt 0 ]] && ! id postgres >/dev/null 2>&1; then
		rail_drift "running as root needs a postgres user to own the throwaway server (useradd postgres), or set DATABASE_URL"
		return 1
	fi
	local dir port
	dir="$(mktemp -d "${TMPDIR:-/tmp}/mesh-rail-pg.XXXXXX")"
	rail_on_exit "rail_pg_stop_throwaway $(printf '%q' "$pg_ctl") $(printf '%q' "$dir")"
	[[ ${#as_pg[@]} -gt 0 ]] && chown postgres "$dir"
	port="$(rail_free_port)"
	rail_cmd pg-initdb 120 "${as_pg[@]}" "$initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync || return 1
	echo "$ ${as_pg[*]} $pg_ctl start -D $dir/data (port $port)" >"$RAIL_VERIFY_DIR/pg-start.log"
	rail__errexit_save
	rail_detach "$RAIL_VERIFY_DIR/pg-start.log" "${as_pg[@]}" "$pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start
	local rc=$?
	rail__errexit_restore
	if [[ $rc -ne 0 ]]; then
		cat "$dir/postgres.log" >>"$RAIL_VERIFY_DIR/pg-start.log" 2>/dev/null
		rail_set failing_log "$RAIL_VERIFY_DIR/pg-start.log"
		rail_drift "throwaway PostgreSQL did not start (pg_ctl status $rc)"
		return 1
	fi
	local url="postgres://postgres@127.0.0.1:$port/postgres"
	rail_set admin_url "$url"
	rail_set throwaway_pg "$dir"
	rail_secret DATABASE_URL "$url"
	echo "throwaway PostgreSQL ready on 127.0.0.1:$port (data $dir/data)"
}

# rail_pg_stop_throwaway PG_CTL DIR stops the throwaway server and removes it.
rail_pg_stop_throwaway() {
	local as_pg=()
	mapfile -t as_pg < <(rail__as_pg)
	if [[ -d "$2/data" ]]; then
		"${as_pg[@]}" "$1" -D "$2/data" -m immediate -w -t 20 stop || true
		cp "$2/postgres.log" "$RAIL_VERIFY_DIR/throwaway-postgres.log" 2>/dev/null || true
	fi
	rm -rf "$2"
	echo "throwaway PostgreSQL removed: $2"
}

# rail_pg_use_env_or_throwaway is the database phase shared by the rails:
# DATABASE_URL when set (checked, then used only as an admin connection),
# else a throwaway server.
rail_pg_use_env_or_throwaway() {
	if [[ -n "${DATABASE_URL:-}" ]]; then
		rail_secret DATABASE_URL "$DATABASE_URL"
		case "$DATABASE_URL" in
		postgres://* | postgresql://*) ;;
		*)
			rail_drift "DATABASE_URL must start with postgres:// or postgresql://"
			return 1
			;;
		esac
		rail_set admin_url "$DATABASE_URL"
		echo "using DATABASE_URL=<redacted> as the admin connection"
		rail_psql pg-admin-check "$DATABASE_URL" 30 -tAc 'select version()' || return 1
	else
		echo "DATABASE_URL is unset: starting a throwaway PostgreSQL"
		rail_pg_start_throwaway || return 1
		rail_psql pg-admin-check "$(rail_get admin_url)" 30 -tAc 'select version()' || return 1
	fi
}

# rail_pg_create_isolated PREFIX creates a fresh database from the admin
# connection, registers its drop hook and sets state isolated_url (registered
# as the DATABASE_URL_ISOLATED secret).
rail_pg_create_isolated() {
	local admin name url
	admin="$(rail_get admin_url)"
	name="$1_$(date -u +%Y%m%d%H%M%S)_$$_$RANDOM"
	url="$(RAIL__URL="$admin" python3 -c '
import os, sys
from urllib.parse import urlsplit, urlunsplit
u = urlsplit(os.environ["RAIL__URL"])
print(urlunsplit((u.scheme, u.netloc, "/" + sys.argv[1], u.query, u.fragment)))' "$name")"
	rail_secret DATABASE_URL_ISOLATED "$url"
	rail_psql pg-create-db "$admin" 60 -c "CREATE DATABASE \"$name\"" || return 1
	rail_on_exit "rail_pg_drop_db $(printf '%q' "$name")"
	rail_set isolated_db "$name"
	rail_set isolated_url "$url"
	echo "isolated database $name created"
}

# rail_pg_drop_db NAME drops a database created by rail_pg_create_isolated.
rail_pg_drop_db() {
	local admin
	admin="$(rail_get admin_url)"
	[[ -n "$admin" ]] || return 0
	local lines kv envs=()
	lines="$(rail_pg_envs "$admin")" || return 1
	while IFS= read -r kv; do [[ -n "$kv" ]] && envs+=("$kv"); done <<<"$lines"
	(
		for kv in "${envs[@]}"; do export "${kv%%=*}=${kv#*=}"; done
		psql -X -q -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" 2>/dev/null ||
			psql -X -q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$1'" -c "DROP DATABASE IF EXISTS \"$1\""
	)
	echo "dropped database $1"
}
