package main

import (
	"database/sql"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"meshgo.dev/mesh/meshtest/pgtest"
)

const (
	migrationTodos = `-- +goose Up
CREATE TABLE todos (id bigserial PRIMARY KEY, title text NOT NULL);

-- +goose Down
DROP TABLE todos;
`
	migrationIndex = `-- +goose Up
CREATE INDEX todos_title_idx ON todos (title);

-- +goose Down
DROP INDEX todos_title_idx;
`
	migrationBroken = `-- +goose Up
CREATE TABLE broken (id int REFERENCES no_such_table (id));

-- +goose Down
DROP TABLE broken;
`
)

// migrationProject writes a project directory holding the given migrations
// and returns it.
func migrationProject(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "proj")
	if err := os.MkdirAll(filepath.Join(dir, "migrations"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, "migrations", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// assertNoSecret fails when the connection string or its password appears
// in the output.
func assertNoSecret(t *testing.T, databaseURL string, res cliResult) {
	t.Helper()
	secrets := []string{databaseURL}
	if u, err := url.Parse(databaseURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			secrets = append(secrets, pw)
		}
	}
	for _, s := range secrets {
		if s != "" && (strings.Contains(res.stdout, s) || strings.Contains(res.stderr, s)) {
			t.Errorf("output leaks a DATABASE_URL secret:\nstdout: %s\nstderr: %s", res.stdout, res.stderr)
		}
	}
}

func TestMigrateUpStatusDown(t *testing.T) {
	databaseURL := pgtest.New(t)
	env := []string{"DATABASE_URL=" + databaseURL}
	proj := migrationProject(t, map[string]string{
		"20260402120000_create_todos.sql": migrationTodos,
		"20260402130000_index_title.sql":  migrationIndex,
		"README.txt":                      "not a migration",
		"helper.go":                       "package migrations\n", // not a Go migration: meshc runs SQL only
	})
	parent := filepath.Dir(proj)

	steps := []struct {
		args       []string
		wantStdout string // exact; "" = check wantIn
		wantIn     []string
	}{
		{args: []string{"migrate", "proj", "status"}, wantIn: []string{
			"pending  20260402120000_create_todos.sql", "pending  20260402130000_index_title.sql", "0 applied, 2 pending\n"}},
		{args: []string{"migrate", "proj", "up"}, wantStdout: "Applying: 20260402120000_create_todos.sql\n" +
			"Applying: 20260402130000_index_title.sql\nApplied 2 migration(s)\n"},
		{args: []string{"migrate", "proj", "up"}, wantStdout: "Applied 0 migration(s)\n"},
		{args: []string{"migrate", "proj", "status"}, wantIn: []string{
			"applied  20260402120000_create_todos.sql", "applied  20260402130000_index_title.sql", "2 applied, 0 pending\n"}},
		{args: []string{"migrate", "proj", "down"}, wantStdout: "Rolled back: 20260402130000_index_title.sql\nRolled back 1 migration(s)\n"},
		{args: []string{"migrate", "proj", "status"}, wantIn: []string{
			"applied  20260402120000_create_todos.sql", "pending  20260402130000_index_title.sql", "1 applied, 1 pending\n"}},
		{args: []string{"migrate", "proj", "down"}, wantStdout: "Rolled back: 20260402120000_create_todos.sql\nRolled back 1 migration(s)\n"},
		{args: []string{"migrate", "proj", "down"}, wantStdout: "Rolled back 0 migration(s)\n"},
		{args: []string{"migrate", "proj", "up"}, wantStdout: "Applying: 20260402120000_create_todos.sql\n" +
			"Applying: 20260402130000_index_title.sql\nApplied 2 migration(s)\n"},
	}
	for _, st := range steps {
		res := runMeshc(t, parent, env, st.args...)
		assertNoSecret(t, databaseURL, res)
		if res.code != 0 {
			t.Fatalf("meshc %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(st.args, " "), res.code, res.stdout, res.stderr)
		}
		if st.wantStdout != "" && res.stdout != st.wantStdout {
			t.Errorf("meshc %s stdout = %q, want %q", strings.Join(st.args, " "), res.stdout, st.wantStdout)
		}
		for _, w := range st.wantIn {
			if !strings.Contains(res.stdout, w) {
				t.Errorf("meshc %s stdout lacks %q:\n%s", strings.Join(st.args, " "), w, res.stdout)
			}
		}
	}

	// The schema is really there, and goose tracks it.
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), `INSERT INTO todos (title) VALUES ('buy milk')`); err != nil {
		t.Errorf("todos table missing after migrate up: %v", err)
	}
	var versions int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM goose_db_version WHERE version_id > 0 AND is_applied`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if versions < 2 {
		t.Errorf("goose_db_version holds %d applied rows, want at least 2", versions)
	}

	// The default directory is the current one.
	res := runMeshc(t, proj, env, "migrate", "status")
	if res.code != 0 || !strings.Contains(res.stdout, "2 applied, 0 pending") {
		t.Errorf("meshc migrate status in the project: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}

func TestMigrateFailingMigration(t *testing.T) {
	databaseURL := pgtest.New(t)
	proj := migrationProject(t, map[string]string{
		"001_todos.sql":  migrationTodos,
		"002_broken.sql": migrationBroken,
	})
	res := runMeshc(t, proj, []string{"DATABASE_URL=" + databaseURL}, "migrate", "up")
	assertNoSecret(t, databaseURL, res)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", res.code, res.stderr)
	}
	if !strings.HasPrefix(res.stdout, "Applying: 001_todos.sql\nApplying: 002_broken.sql\n") {
		t.Errorf("stdout = %q", res.stdout)
	}
	if !strings.HasPrefix(res.stderr, "error: apply 002_broken.sql: ") || !strings.Contains(res.stderr, "no_such_table") {
		t.Errorf("stderr = %q, want the failing file and the database's reason", res.stderr)
	}
	status := runMeshc(t, proj, []string{"DATABASE_URL=" + databaseURL}, "migrate", "status")
	if !strings.Contains(status.stdout, "1 applied, 1 pending") {
		t.Errorf("after a failed migration, status = %q; want the first applied and the broken one pending", status.stdout)
	}
}

// TestMigrateNeverPrintsDatabaseURL feeds connection strings that fail in
// different places and checks that neither the URL nor its password reaches
// the output.
func TestMigrateNeverPrintsDatabaseURL(t *testing.T) {
	good := pgtest.New(t)
	u, err := url.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	wrongPassword := *u
	wrongPassword.User = url.UserPassword(u.User.Username(), "Wr0ng-Secret-Pass")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().String()
	l.Close()

	proj := migrationProject(t, map[string]string{"001_todos.sql": migrationTodos})
	tests := []struct{ name, databaseURL, wantIn string }{
		{"wrong password", wrongPassword.String(), "error: connect to DATABASE_URL: "},
		{"nothing listening", "postgres://app:Cl0sed-Port-Secret@" + closedPort + "/db?sslmode=disable&connect_timeout=5", "error: connect to DATABASE_URL: "},
		{"unparsable", "postgres://app:Unp4rsable-Secret@127.0.0.1:notaport/db", "error: "},
		{"keyword form", "host=127.0.0.1 port=" + strings.Split(closedPort, ":")[1] + " user=app password=Kw-Secret-Value dbname=db connect_timeout=5", "error: connect to DATABASE_URL: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runMeshc(t, proj, []string{"DATABASE_URL=" + tt.databaseURL}, "migrate", "up")
			if res.code != 1 || !strings.HasPrefix(res.stderr, tt.wantIn) {
				t.Errorf("exit %d, stderr %q; want exit 1 and prefix %q", res.code, res.stderr, tt.wantIn)
			}
			out := res.stdout + res.stderr
			if strings.Contains(out, "app:xxxxx@") || strings.Contains(out, "127.0.0.1:notaport") {
				t.Errorf("output quotes the (masked) connection string:\n%s", out)
			}
			for _, secret := range []string{tt.databaseURL, "Wr0ng-Secret-Pass", "Cl0sed-Port-Secret", "Unp4rsable-Secret", "Kw-Secret-Value"} {
				if strings.Contains(out, secret) {
					t.Errorf("output contains %q:\n%s", secret, out)
				}
			}
		})
	}
}

func TestMigrateUsageErrors(t *testing.T) {
	proj := migrationProject(t, map[string]string{"001_todos.sql": migrationTodos})
	empty := migrationProject(t, nil)
	noMigrations := t.TempDir()
	tests := []struct {
		name       string
		dir        string
		env        []string
		args       []string
		wantStderr string
	}{
		{"missing DATABASE_URL", proj, nil, []string{"migrate", "up"},
			"error: Missing required environment variable DATABASE_URL; export it first, e.g. export DATABASE_URL=postgres://user:password@127.0.0.1:5432/dbname\n"},
		{"blank DATABASE_URL", proj, []string{"DATABASE_URL= "}, []string{"migrate", "status"},
			"error: Missing required environment variable DATABASE_URL; export it first, e.g. export DATABASE_URL=postgres://user:password@127.0.0.1:5432/dbname\n"},
		{"no action", proj, nil, []string{"migrate"}, "error: usage: meshc migrate [dir] up|down|status; run 'meshc migrate --help'\n"},
		{"too many arguments", proj, nil, []string{"migrate", ".", "up", "now"}, "error: usage: meshc migrate [dir] up|down|status; run 'meshc migrate --help'\n"},
		{"unknown action", proj, nil, []string{"migrate", "sideways"}, "error: unknown migrate action 'sideways'; use up, down or status\n"},
		{"no migrations folder", noMigrations, []string{"DATABASE_URL=postgres://x@127.0.0.1:1/x"}, []string{"migrate", "up"},
			"error: no migrations directory in .; pass the project directory (meshc migrate <dir> up), which holds migrations/\n"},
		{"empty migrations folder", empty, []string{"DATABASE_URL=postgres://x@127.0.0.1:1/x"}, []string{"migrate", "up"},
			"error: no migrations in migrations (expected <version>_<description>.sql files)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runMeshc(t, tt.dir, tt.env, tt.args...)
			if res.code != 1 || res.stderr != tt.wantStderr || res.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1, stderr %q", res.code, res.stdout, res.stderr, tt.wantStderr)
			}
		})
	}
}

func TestRedactor(t *testing.T) {
	tests := []struct{ url, msg, secret string }{
		{"postgres://u:p%40ss-word@h/db", "failed for postgres://u:p%40ss-word@h/db: p@ss-word", "ss-word"},
		{"host=h user=u password=kv-secret-1", "password kv-secret-1 rejected", "kv-secret-1"},
		{"postgres://u:plain-secret-2@h/db", "bad: u:plain-secret-2", "plain-secret-2"},
	}
	for _, tt := range tests {
		got := newRedactor(tt.url).scrub(tt.msg)
		if strings.Contains(got, tt.secret) || strings.Contains(got, tt.url) {
			t.Errorf("scrub(%q) = %q: the secret survived", tt.msg, got)
		}
	}
	for _, msg := range []string{
		"x postgres://u:s3@h/db y",
		"x postgres://u:xxxxx@h/db y", // as pgx quotes it
	} {
		if got := newRedactor("postgres://u:s3@h/db").scrub(msg); got != "x <redacted:DATABASE_URL> y" {
			t.Errorf("scrub(%q) = %q", msg, got)
		}
	}
	// An unparsable URL is still recognised in pgx's masked form.
	bad := "postgres://app:S3cret@127.0.0.1:notaport/db"
	if got := newRedactor(bad).scrub("cannot parse `postgres://app:xxxxx@127.0.0.1:notaport/db`: invalid port"); got != "cannot parse `<redacted:DATABASE_URL>`: invalid port" {
		t.Errorf("masked unparsable URL: %q", got)
	}
}
