package pgtest

import (
	"database/sql"
	"os"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func open(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestNewGivesFreshIsolatedDatabases(t *testing.T) {
	var names [2]string
	t.Run("create", func(t *testing.T) {
		a, b := New(t), New(t)
		if a == b {
			t.Fatalf("two calls returned the same URL")
		}
		dbA, dbB := open(t, a), open(t, b)
		for i, db := range []*sql.DB{dbA, dbB} {
			if err := db.QueryRowContext(t.Context(), `SELECT current_database()`).Scan(&names[i]); err != nil {
				t.Fatal(err)
			}
		}
		if names[0] == names[1] || !strings.HasPrefix(names[0], "mesh_test_") {
			t.Fatalf("database names %q, %q: want two distinct mesh_test_* names", names[0], names[1])
		}
		if _, err := dbA.ExecContext(t.Context(), `CREATE TABLE only_in_a (id int)`); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := dbB.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("table created in one database is visible in the other")
		}
		// Leave connections open: the cleanup must drop the databases anyway.
	})
	if t.Skipped() {
		return
	}
	// The subtest's cleanups have run: both databases are gone.
	s, err := get()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		var n int
		if err := s.admin.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s still exists after its test ended", name)
		}
	}
}

func TestThrowawayServerSettings(t *testing.T) {
	url := New(t)
	if os.Getenv(EnvAdminURL) != "" {
		t.Skip("DATABASE_URL names an existing server; its settings are not pgtest's")
	}
	db := open(t, url)
	for setting, want := range map[string]string{"listen_addresses": "127.0.0.1", "fsync": "off"} {
		var got string
		if err := db.QueryRowContext(t.Context(), `SHOW `+setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	if !strings.HasPrefix(url, "postgres://postgres:") || !strings.Contains(url, "@127.0.0.1:") {
		t.Errorf("URL does not point at the loopback server: %s", scrubURL(url, url))
	}
}

func TestParallelNew(t *testing.T) {
	for i := range 4 {
		t.Run(string(rune('a'+i)), func(t *testing.T) {
			t.Parallel()
			db := open(t, New(t))
			if _, err := db.ExecContext(t.Context(), `CREATE TABLE t (id int)`); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:p@127.0.0.1:5432/postgres?sslmode=disable", "postgres://u:p@127.0.0.1:5432/db1?sslmode=disable"},
		{"postgresql://u@h/", "postgresql://u@h/db1"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=db1"},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.in, "db1")
		if err != nil || got != tt.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestScrubURL(t *testing.T) {
	u := "postgres://u:s3cretpw@h:5432/db"
	got := scrubURL(u, "cannot connect to "+u+" (password s3cretpw)")
	if strings.Contains(got, "s3cretpw") || !strings.Contains(got, "<redacted:DATABASE_URL>") {
		t.Errorf("scrubURL left the secret or lost the marker: %q", got)
	}
}

func TestServerStopsAndStartsAgain(t *testing.T) {
	srv := NewServer(t)
	db := open(t, srv.URL())
	db.SetMaxIdleConns(0) // a new connection for every query
	ping := func() error { return db.PingContext(t.Context()) }
	if _, err := db.ExecContext(t.Context(), `CREATE TABLE kept (id int); INSERT INTO kept VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	if err := ping(); err == nil {
		t.Fatal("ping succeeded after Stop")
	}
	srv.Start(t)
	var id int
	if err := db.QueryRowContext(t.Context(), `SELECT id FROM kept`).Scan(&id); err != nil || id != 7 {
		t.Fatalf("after Start: id %d, %v; want the row written before Stop", id, err)
	}
}

func TestServerLeftStoppedIsRemoved(t *testing.T) {
	var dir string
	t.Run("stop", func(t *testing.T) {
		srv := NewServer(t)
		dir = srv.s.dir
		srv.Stop(t)
	})
	if dir == "" { // skipped: no server
		return
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("server directory after the test: %v, want it removed", err)
	}
}
