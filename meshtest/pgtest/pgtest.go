// Package pgtest gives tests a fresh, empty PostgreSQL database per call.
//
// New returns the URL of a database created for the calling test and dropped
// (WITH (FORCE)) when the test ends. The databases live on one server per test
// binary:
//
//   - when DATABASE_URL is set, it is the admin URL of an existing server
//     (the role needs CREATEDB), and a server that cannot be reached fails the
//     test;
//   - otherwise pgtest starts a throwaway server from the machine's initdb and
//     pg_ctl (found on PATH or under /usr/lib/postgresql/*/bin) in a temporary
//     directory, on a free port of 127.0.0.1 only, with fsync off. Run as root
//     it runs them as the postgres user through runuser. The server is stopped
//     and its directory removed by Main (or Run), which the test binary must
//     call from TestMain.
//
// When no server can be had the test is skipped with the reason, unless
// MESH_REQUIRE_POSTGRES=1, which turns the skip into a failure (for CI).
//
// A test binary killed before Main returns leaves its throwaway server
// running; its directory is named mesh-pgtest-* under the temporary directory,
// and pg_ctl -D <dir>/data stop stops it.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"meshgo.dev/mesh/internal/pgserver"
	"meshgo.dev/mesh/meshtest/internal/require"
)

// Environment variables read by pgtest.
const (
	EnvAdminURL = "DATABASE_URL"          // admin URL of an existing server
	EnvRequire  = "MESH_REQUIRE_POSTGRES" // "1": unavailable PostgreSQL fails instead of skipping
)

var (
	mainCalled atomic.Bool
	serial     atomic.Int64

	mu     sync.Mutex // guards state
	state  *server    // nil until the first New
	failed error      // why no server is available; sticky
)

// server is the PostgreSQL server the test binary's databases live on.
type server struct {
	admin *sql.DB
	url   string       // admin URL
	dir   string       // throwaway server directory; "" for DATABASE_URL
	stop  func() error // closes admin; stops and removes a throwaway server

	// For a throwaway server only: pgStop stops it and keeps its data,
	// pgStart starts it again on the same port.
	pgStop, pgStart func() error
}

// errMisconfigured marks failures that fail a test even without
// MESH_REQUIRE_POSTGRES: a DATABASE_URL that was set but does not work.
var errMisconfigured = errors.New("DATABASE_URL is set but unusable")

// Run runs the tests, then stops the throwaway server and removes its
// directory, and returns the exit code for os.Exit. Use it from a TestMain
// that has its own clean-up; otherwise use Main.
func Run(m *testing.M) int {
	mainCalled.Store(true)
	code := m.Run()
	if err := shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Main runs the tests, stops the throwaway server and exits. Call it from
// TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) { os.Exit(Run(m)) }

// New creates an empty database for t and returns its URL. The database is
// dropped when t ends. New may be called from parallel tests.
func New(t testing.TB) string {
	t.Helper()
	s, err := get()
	if err != nil {
		unavailable(t, err)
	}
	name := fmt.Sprintf("mesh_test_%d_%d_%s", os.Getpid(), serial.Add(1), randomHex(3))
	if _, err := s.admin.ExecContext(t.Context(), `CREATE DATABASE `+quoteIdent(name)); err != nil {
		t.Fatalf("pgtest: create database %s: %s", name, s.scrub(err.Error()))
	}
	t.Cleanup(func() {
		// t.Context is already cancelled during cleanup.
		drop := `DROP DATABASE IF EXISTS ` + quoteIdent(name)
		if _, err := s.admin.Exec(drop + ` WITH (FORCE)`); err != nil {
			// Servers before PostgreSQL 13 lack FORCE.
			if _, err2 := s.admin.Exec(drop); err2 != nil {
				t.Errorf("pgtest: drop database %s: %s", name, s.scrub(err.Error()))
			}
		}
	})
	u, err := withDatabase(s.url, name)
	if err != nil {
		t.Fatalf("pgtest: %s", s.scrub(err.Error()))
	}
	return u
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	require.Unavailable(t, "pgtest", "PostgreSQL", EnvRequire, err, errors.Is(err, errMisconfigured))
}

// get returns the server, connecting to or starting it on first use.
func get() (*server, error) {
	mu.Lock()
	defer mu.Unlock()
	if state != nil || failed != nil {
		return state, failed
	}
	var s *server
	var err error
	if admin := os.Getenv(EnvAdminURL); admin != "" {
		s, err = connect(admin)
		if err != nil {
			err = fmt.Errorf("%w: %v", errMisconfigured, scrubURL(admin, err.Error()))
		}
	} else if !mainCalled.Load() {
		err = errors.New("a throwaway server needs pgtest.Main(m) (or Run) in TestMain to stop it; add func TestMain(m *testing.M) { pgtest.Main(m) }")
	} else {
		s, err = startThrowaway()
	}
	state, failed = s, err
	return s, err
}

// connect opens and pings the admin URL.
func connect(adminURL string) (*server, error) {
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return &server{admin: db, url: adminURL, stop: db.Close}, nil
}

func shutdown() error {
	mu.Lock()
	defer mu.Unlock()
	if state == nil {
		return nil
	}
	err := state.stop()
	state = nil
	failed = errors.New("pgtest: server already stopped")
	return err
}

func (s *server) scrub(msg string) string { return scrubURL(s.url, msg) }

// startThrowaway initialises and starts a private server.
func startThrowaway() (*server, error) {
	pg, err := pgserver.Start(pgserver.Options{DirPrefix: "mesh-pgtest-"})
	if errors.Is(err, pgserver.ErrNoBinaries) {
		return nil, fmt.Errorf("%w, and DATABASE_URL is not set", err)
	}
	if err != nil {
		return nil, err
	}
	s, err := connect(pg.URL)
	if err != nil {
		pg.Remove()
		return nil, fmt.Errorf("connect to the throwaway server: %s", scrubURL(pg.URL, err.Error()))
	}
	s.dir = pg.Dir
	s.pgStop = pg.Stop
	s.pgStart = pg.Resume
	s.stop = func() error {
		s.admin.Close()
		return pg.Remove()
	}
	return s, nil
}

// withDatabase returns adminURL pointing at database name. It accepts URLs
// (postgres://...) and keyword/value connection strings.
func withDatabase(adminURL, name string) (string, error) {
	if strings.HasPrefix(adminURL, "postgres://") || strings.HasPrefix(adminURL, "postgresql://") {
		u, err := url.Parse(adminURL)
		if err != nil {
			return "", errors.New("DATABASE_URL is not a valid URL")
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// Keyword/value form: a later dbname overrides an earlier one.
	return strings.TrimSpace(adminURL) + " dbname=" + name, nil
}

// scrubURL removes a connection string and its password from msg.
func scrubURL(connURL, msg string) string {
	msg = strings.ReplaceAll(msg, connURL, "<redacted:DATABASE_URL>")
	if u, err := url.Parse(connURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "<redacted>")
		}
	}
	return msg
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
