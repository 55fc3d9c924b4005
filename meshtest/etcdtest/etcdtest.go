// Package etcdtest gives tests a throwaway etcd server of their own.
//
// NewServer starts the machine's etcd binary (found on PATH, or named by
// MESH_ETCD_BIN) as a one-member cluster in a temporary directory, listening
// on free ports of 127.0.0.1 only, and stops it and removes the directory
// when the test ends. The server runs with a short heartbeat (10 ms) and
// election timeout (100 ms), so it is leader within a fraction of a second
// of starting and grants leases as short as one second; a production server's
// defaults (100 ms, 1 s) make its shortest lease two seconds.
//
// When etcd is missing the test is skipped with the reason, unless
// MESH_REQUIRE_ETCD=1 (set by .ci/run), which turns the skip into a failure.
//
// The server dies with the test binary even when the binary is killed
// (SIGKILL on the parent's death, Linux only); its directory, named
// mesh-etcdtest-* under the temporary directory, is then left behind.
package etcdtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"meshgo.dev/mesh/meshtest/internal/require"
)

// Environment variables read by etcdtest.
const (
	EnvRequire = "MESH_REQUIRE_ETCD" // "1": a missing etcd fails instead of skipping
	EnvBinary  = "MESH_ETCD_BIN"     // path of the etcd binary; default: etcd on PATH
)

// Server is a running (or stopped) throwaway etcd server that belongs to
// one test.
type Server struct {
	bin       string
	dir       string
	client    string // host:port clients connect to
	peer      string // host:port of the peer listener
	logPath   string
	extra     []string   // flags after the harness's own
	mu        sync.Mutex // guards cmd and exited
	cmd       *exec.Cmd
	exited    chan struct{} // closed when cmd has exited
	closeOnce sync.Once
}

// NewServer starts a server for t and returns it; it is stopped and its
// directory removed when t ends. Without an etcd binary t is skipped, or
// fails under MESH_REQUIRE_ETCD=1. Flags in extra come after the
// harness's own and override them (--election-timeout=1000, say).
func NewServer(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		unavailable(t, err)
	}
	dir, err := os.MkdirTemp("", "mesh-etcdtest-")
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	s := &Server{bin: bin, dir: dir, logPath: filepath.Join(dir, "etcd.log"), extra: extra}
	t.Cleanup(func() {
		s.stop()
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("etcdtest: remove %s: %v", dir, err)
		}
	})
	// The free ports may be taken between choosing and binding them: try
	// three pairs.
	for attempt := 1; ; attempt++ {
		s.client, s.peer, err = freeAddrs()
		if err == nil {
			err = s.start()
		}
		if err == nil {
			return s
		}
		if attempt == 3 {
			t.Fatalf("etcdtest: start %s: %v", bin, err)
		}
		os.RemoveAll(filepath.Join(dir, "data"))
	}
}

// Endpoint is the host:port clients connect to, as etcd://<Endpoint> names
// it.
func (s *Server) Endpoint() string { return s.client }

// Stop stops the server (SIGTERM, then SIGKILL after 10 s) and keeps its
// data. Connections are closed: clients see the server as unreachable.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("etcdtest: stop: %v", err)
	}
}

// Start starts a stopped server again on the same ports with the same data,
// and waits until it is leader. It fails t when the server does not start
// (a port may have been taken meanwhile).
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("etcdtest: restart: %v", err)
	}
}

// Log returns the server's log so far, for a failing test to show.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	require.Unavailable(t, "etcdtest", "etcd", EnvRequire, err, false)
}

func findBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %v", EnvBinary, p, err)
		}
		return p, nil
	}
	p, err := exec.LookPath("etcd")
	if err != nil {
		return "", errors.New("no etcd on PATH (Debian: apt-get install etcd-server)")
	}
	return p, nil
}

// freeAddrs returns two distinct free loopback addresses.
func freeAddrs() (client, peer string, err error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", err
		}
		ls = append(ls, l)
	}
	return ls[0].Addr().String(), ls[1].Addr().String(), nil
}

// start runs etcd and waits until it answers /health as leader.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	const name = "mesh-etcdtest"
	cmd := exec.Command(s.bin,
		"--name", name,
		"--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", "http://"+s.client,
		"--advertise-client-urls", "http://"+s.client,
		"--listen-peer-urls", "http://"+s.peer,
		"--initial-advertise-peer-urls", "http://"+s.peer,
		"--initial-cluster", name+"=http://"+s.peer,
		"--heartbeat-interval", "10",
		"--election-timeout", "100",
		"--logger", "zap",
		"--log-outputs", "stderr",
	)
	cmd.Args = append(cmd.Args, s.extra...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		log.Close()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	if err := waitHealthy(s.client, exited, 30*time.Second); err != nil {
		s.killLocked()
		return fmt.Errorf("%v\nserver log (tail):\n%s", err, tail(s.Log(), 20))
	}
	return nil
}

// stop stops the server if it runs.
func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
	return nil
}

func (s *Server) killLocked() {
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// waitHealthy polls the server's /health until it reports healthy (it then
// has a leader), the process exits, or limit passes.
func waitHealthy(client string, exited <-chan struct{}, limit time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	var last string
	for {
		select {
		case <-exited:
			return errors.New("etcd exited while starting")
		default:
		}
		resp, err := hc.Get("http://" + client + "/health")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			var h struct {
				Health string `json:"health"`
			}
			if resp.StatusCode == http.StatusOK && json.Unmarshal(bytes.TrimSpace(body), &h) == nil && h.Health == "true" {
				return nil
			}
			last = fmt.Sprintf("/health: %d %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd not healthy after %v: %s", limit, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// EnableAuth turns on authentication with a root user of the given password
// (etcd's root user has every permission); from then on a client needs
// those credentials.
func (s *Server) EnableAuth(t testing.TB, password string) {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{s.client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("etcdtest: client: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.UserAdd(ctx, "root", password); err != nil {
		t.Fatalf("etcdtest: add user root: %v", err)
	}
	if _, err := c.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatalf("etcdtest: grant role root: %v", err)
	}
	if _, err := c.AuthEnable(ctx); err != nil {
		t.Fatalf("etcdtest: enable auth: %v", err)
	}
}
