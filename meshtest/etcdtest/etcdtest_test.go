package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"meshgo.dev/mesh/meshtest/internal/require"
)

func client(t *testing.T, s *Server) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A server listens on loopback only, keeps its data across Stop and Start,
// refuses connections while stopped, and leaves nothing behind.
func TestServerLifecycle(t *testing.T) {
	var dir string
	t.Run("run", func(t *testing.T) {
		s := NewServer(t)
		dir = s.dir
		host, _, err := net.SplitHostPort(s.Endpoint())
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("endpoint %q: want 127.0.0.1:port", s.Endpoint())
		}
		c := client(t, s)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if _, err := c.Put(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
		s.Stop(t)
		if conn, err := net.DialTimeout("tcp", s.Endpoint(), time.Second); err == nil {
			conn.Close()
			t.Fatal("a stopped server still accepts connections")
		}
		s.Start(t)
		r, err := c.Get(ctx, "k")
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "v" {
			t.Fatalf("after restart: %v, %v; want k=v", r, err)
		}
		if !strings.Contains(s.Log(), "mesh-etcdtest") {
			t.Errorf("server log does not name the member:\n%s", tail(s.Log(), 5))
		}
	})
	if t.Skipped() || dir == "" {
		return
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("server directory %s left behind: %v", dir, err)
	}
}

// The harness's timing lets the server grant one-second leases; extra flags
// override it (etcd's default election timeout makes two seconds the
// shortest).
func TestShortLeases(t *testing.T) {
	for _, tt := range []struct {
		extra []string
		want  int64
	}{{nil, 1}, {[]string{"--heartbeat-interval=100", "--election-timeout=1000"}, 2}} {
		t.Run(fmt.Sprint(tt.extra), func(t *testing.T) {
			c := client(t, NewServer(t, tt.extra...))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			g, err := c.Grant(ctx, 1)
			if err != nil || g.TTL != tt.want {
				t.Fatalf("Grant(1 s): %+v, %v; want a %d s lease", g, err, tt.want)
			}
		})
	}
}

// CI sets MESH_REQUIRE_ETCD=1: a missing etcd must fail the test, never skip
// it. Without the variable a developer without etcd skips.
func TestUnavailableFailsWhenRequired(t *testing.T) {
	require.CheckRequired(t, EnvRequire, unavailable, errors.New("no etcd on PATH"))
	t.Setenv(EnvBinary, "/nonexistent/etcd")
	if _, err := findBinary(); err == nil || !strings.Contains(err.Error(), EnvBinary) {
		t.Fatalf("findBinary with a missing %s: %v", EnvBinary, err)
	}
}

// EnableAuth turns authentication on: a client without credentials is
// refused, root with the password reads and writes, and a wrong password
// cannot connect.
func TestEnableAuth(t *testing.T) {
	s := NewServer(t)
	const password = "s3cret-pw"
	s.EnableAuth(t, password)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := client(t, s).Put(ctx, "k", "v"); err == nil {
		t.Fatal("a client without credentials wrote with authentication on")
	}
	auth := func(pw string) (*clientv3.Client, error) {
		return clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint()}, DialTimeout: 5 * time.Second,
			Username: "root", Password: pw, Logger: zap.NewNop()})
	}
	c, err := auth(password)
	if err != nil {
		t.Fatalf("root with the password: %v", err)
	}
	defer c.Close()
	if _, err := c.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("root with the password cannot write: %v", err)
	}
	if w, err := auth("wrong"); err == nil {
		w.Close()
		t.Fatal("root with a wrong password connected")
	}
}
