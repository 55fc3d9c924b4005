package pgtest

import (
	"os"
	"testing"
)

// Server is a throwaway PostgreSQL server that belongs to one test, which
// may stop it and start it again: for tests of what a client does when its
// database goes away.
type Server struct {
	s       *server
	url     string
	stopped bool // by Stop, and not started again
}

// NewServer starts a private throwaway server for t (never the DATABASE_URL
// server, which other tests share) with one empty database, and returns it.
// It needs initdb and pg_ctl as the shared throwaway server does; without
// them t is skipped, or fails under MESH_REQUIRE_POSTGRES=1. The server is
// stopped and its directory removed when t ends. A test binary killed before
// that leaves it running, as Main explains.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s, err := startThrowaway()
	if err != nil {
		unavailable(t, err)
	}
	srv := &Server{s: s}
	t.Cleanup(func() {
		if srv.stopped {
			s.admin.Close()
			if err := os.RemoveAll(s.dir); err != nil {
				t.Errorf("pgtest: remove private server: %v", err)
			}
			return
		}
		if err := s.stop(); err != nil {
			t.Errorf("pgtest: stop private server: %v", err)
		}
	})
	const name = "mesh_test"
	if _, err := s.admin.ExecContext(t.Context(), `CREATE DATABASE `+quoteIdent(name)); err != nil {
		t.Fatalf("pgtest: create database %s: %s", name, s.scrub(err.Error()))
	}
	u, err := withDatabase(s.url, name)
	if err != nil {
		t.Fatalf("pgtest: %s", s.scrub(err.Error()))
	}
	srv.url = u
	return srv
}

// URL is the URL of the server's test database, with its password.
func (s *Server) URL() string { return s.url }

// Stop stops the server (pg_ctl stop -m fast: open connections are closed at
// once) and keeps its data. It fails t when the server does not stop.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.s.pgStop(); err != nil {
		t.Fatalf("pgtest: stop server: %v", err)
	}
	s.stopped = true
}

// Start starts a stopped server again on the same port with the same data.
// It fails t when the server does not start (the port may have been taken
// meanwhile).
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.s.pgStart(); err != nil {
		t.Fatalf("pgtest: start server: %v", err)
	}
	s.stopped = false
}
