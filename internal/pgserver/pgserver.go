// Package pgserver starts throwaway PostgreSQL servers from the machine's
// initdb and pg_ctl: a fresh cluster in a temporary directory, listening on a
// free port of 127.0.0.1 only, with a random password for the postgres role.
// Run as root it runs them as the postgres user through runuser (PostgreSQL
// refuses to run as root).
//
// It serves the test kit (meshtest/pgtest) and the benchmarks (bench/dbos, a
// module of its own under this tree), and imports only the standard library
// so that a program can use it without linking the test kit.
package pgserver

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoBinaries is returned, possibly wrapped, when initdb and pg_ctl are
// neither on PATH nor under /usr/lib/postgresql/*/bin.
var ErrNoBinaries = errors.New("no initdb and pg_ctl on PATH or under /usr/lib/postgresql/*/bin")

// Options configure Start. The zero value is a fast server for tests.
type Options struct {
	// DirPrefix begins the name of the server's temporary directory
	// (os.MkdirTemp's pattern); empty means "mesh-pg-".
	DirPrefix string
	// Durable keeps fsync, synchronous_commit and full_page_writes on, as
	// PostgreSQL ships them. By default they are off: fast, and a machine
	// crash loses the data, which a throwaway server does not mind.
	Durable bool
	// MaxConnections sets max_connections; 0 keeps PostgreSQL's default.
	MaxConnections int
}

// Server is a throwaway server started by Start. Its methods are not safe
// for concurrent use.
type Server struct {
	// URL is the admin URL (role postgres, database postgres) with the
	// password; treat it as a secret.
	URL string
	// Dir is the temporary directory holding data/, server.log and the
	// server's Unix socket. A process killed before Remove leaves the
	// server running; pg_ctl -D Dir/data stop stops it.
	Dir string
	// BinDir holds initdb, pg_ctl and postgres.
	BinDir string

	port int
	opts string                     // pg_ctl -o value, but for the port
	run  func(args ...string) error // runs a server command as its owner
}

// Start initialises a server in a new temporary directory and starts it.
// On error nothing is left running and the directory is removed.
func Start(o Options) (*Server, error) {
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	var wrap []string // prefix that runs a command as the server's owner
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("running as root, and there is no postgres user to run the server as")
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			return nil, errors.New("running as root, and runuser is not on PATH to run the server as postgres")
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		wrap = []string{runuser, "-u", "postgres", "--"}
	}
	prefix := o.DirPrefix
	if prefix == "" {
		prefix = "mesh-pg-"
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	password := make([]byte, 16)
	rand.Read(password)
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(hex.EncodeToString(password)+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if uid >= 0 {
		for _, p := range []string{dir, pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				return fail(err)
			}
		}
	}
	s := &Server{Dir: dir, BinDir: binDir}
	s.run = func(args ...string) error {
		cmd := exec.Command(args[0], args[1:]...)
		if wrap != nil {
			cmd = exec.Command(wrap[0], append(slices.Clone(wrap[1:]), args...)...)
		}
		cmd.Dir = dir // a directory the server's owner can enter
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", filepath.Base(args[0]), err, tail(out, 20))
		}
		return nil
	}
	if err := s.run(filepath.Join(binDir, "initdb"), "-D", s.data(), "-U", "postgres", "--auth=scram-sha-256",
		"--pwfile="+pwfile, "--no-sync", "--encoding=UTF8", "--locale=C"); err != nil {
		return fail(err)
	}
	os.Remove(pwfile)

	s.opts = "-c listen_addresses=127.0.0.1 -c unix_socket_directories=" + dir
	if !o.Durable {
		s.opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	if o.MaxConnections > 0 {
		s.opts += " -c max_connections=" + strconv.Itoa(o.MaxConnections)
	}
	for attempt := 1; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			return fail(err)
		}
		if err = s.Resume(); err == nil {
			break
		}
		if attempt == 3 { // the free port may have been taken meanwhile; retry twice
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return fail(fmt.Errorf("%v\nserver log:\n%s", err, tail(log, 20)))
		}
	}
	s.URL = fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", hex.EncodeToString(password), s.port)
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.Dir, "data") }

// Stop stops the server (pg_ctl stop -m fast: open connections are closed at
// once) and keeps its data for Resume.
func (s *Server) Stop() error {
	return s.run(filepath.Join(s.BinDir, "pg_ctl"), "-D", s.data(), "-m", "fast", "-w", "stop")
}

// Resume starts a stopped server again on the same port with the same data.
// It fails when the port has been taken meanwhile.
func (s *Server) Resume() error {
	opts := fmt.Sprintf("%s -p %d", s.opts, s.port)
	return s.run(filepath.Join(s.BinDir, "pg_ctl"), "-D", s.data(), "-l", filepath.Join(s.Dir, "server.log"),
		"-o", opts, "-w", "-t", "60", "start")
}

// Remove stops a running server at once (pg_ctl stop -m immediate) and
// removes its directory. The error is the first of the two that failed.
func (s *Server) Remove() error {
	err := s.run(filepath.Join(s.BinDir, "pg_ctl"), "-D", s.data(), "-m", "immediate", "-w", "stop")
	if rmErr := os.RemoveAll(s.Dir); err == nil {
		err = rmErr
	}
	return err
}

// Version returns the server's version as postgres --version prints it
// ("17.5 (Debian 17.5-1)"), or "" when that fails.
func (s *Server) Version() string {
	out, err := exec.Command(filepath.Join(s.BinDir, "postgres"), "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "postgres (PostgreSQL)"))
}

// BinDir returns the directory holding initdb and pg_ctl: the one of the
// initdb on PATH (links resolved) when pg_ctl stands beside it, else the
// newest /usr/lib/postgresql/<major>/bin that holds both. It returns
// ErrNoBinaries when there is none.
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			p = resolved
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	major := func(binDir string) int { n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir))); return n }
	slices.SortFunc(dirs, func(a, b string) int { return major(b) - major(a) }) // newest first
	for _, dir := range dirs {
		_, err1 := os.Stat(filepath.Join(dir, "initdb"))
		_, err2 := os.Stat(filepath.Join(dir, "pg_ctl"))
		if err1 == nil && err2 == nil {
			return dir, nil
		}
	}
	return "", ErrNoBinaries
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last lines of b.
func tail(b []byte, lines int) string {
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
