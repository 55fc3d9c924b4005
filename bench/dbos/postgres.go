package main

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

// postgres is a throwaway PostgreSQL server.
type postgres struct {
	url        string
	version    string
	durability string
	stop       func()
}

// startPostgres initialises a server in a temporary directory and starts it
// on a free port of 127.0.0.1. As root it runs initdb and pg_ctl as the
// postgres user (PostgreSQL refuses to run as root).
func startPostgres(fast bool) (*postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	var wrap []string
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("running as root, and there is no postgres user to run the server as")
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			return nil, errors.New("running as root, and runuser is not on PATH")
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		wrap = []string{runuser, "-u", "postgres", "--"}
	}
	dir, err := os.MkdirTemp("", "mesh-bench-dbos-pg-")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*postgres, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	password := hex.EncodeToString(b)
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if uid >= 0 {
		for _, p := range []string{dir, pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				return fail(err)
			}
		}
	}
	runPG := func(args ...string) error {
		cmd := exec.Command(args[0], args[1:]...)
		if wrap != nil {
			cmd = exec.Command(wrap[0], append(slices.Clone(wrap[1:]), args...)...)
		}
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", filepath.Base(args[0]), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := runPG(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=scram-sha-256",
		"--pwfile="+pwfile, "--encoding=UTF8", "--locale=C"); err != nil {
		return fail(err)
	}
	os.Remove(pwfile)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s -c max_connections=200", port, dir)
	durability := "fsync and synchronous_commit on (PostgreSQL's defaults)"
	if fast {
		opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		durability = "fsync and synchronous_commit off"
	}
	pgctl := filepath.Join(bin, "pg_ctl")
	if err := runPG(pgctl, "-D", data, "-l", filepath.Join(dir, "server.log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		return fail(fmt.Errorf("%v\nserver log:\n%s", err, log))
	}
	version := ""
	if out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output(); err == nil {
		version = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "postgres (PostgreSQL)"))
	}
	return &postgres{
		url:        fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", password, port),
		version:    version,
		durability: durability,
		stop: func() {
			_ = runPG(pgctl, "-D", data, "-m", "immediate", "-w", "stop")
			os.RemoveAll(dir)
		},
	}, nil
}

// pgBinDir returns the directory holding initdb and pg_ctl: on PATH, else
// the newest /usr/lib/postgresql/*/bin.
func pgBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "pg_ctl")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	major := func(d string) int { n, _ := strconv.Atoi(filepath.Base(filepath.Dir(d))); return n }
	slices.SortFunc(dirs, func(a, b string) int { return major(b) - major(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no initdb and pg_ctl on PATH or under /usr/lib/postgresql/*/bin")
}
