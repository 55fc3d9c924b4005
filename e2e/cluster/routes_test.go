package cluster_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/meshtest"
)

func httpAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpGet(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	var resp *http.Response
	var err error
	meshtest.Eventually(t, 5*time.Second, 50*time.Millisecond, func() error {
		resp, err = http.Get(url)
		return err
	})
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestRoutesTwoNodesKeysStayUniqueAcrossRestart(t *testing.T) {
	h := newHarness(t)
	p := h.start("primary", "127.0.0.1", "primary", "TESTAPP_HTTP_ADDR="+httpAddr(t))
	s := h.start("standby", "::1", "standby", "TESTAPP_HTTP_ADDR="+httpAddr(t))
	h.waitAuthority(p, "primary", 0, 1, 10*time.Second)
	h.waitAuthority(s, "standby", 0, 1, 10*time.Second)
	keys := map[string]bool{}
	send := func(rounds int) {
		for i := range rounds {
			n := []*node{p, s}[i%2]
			code, hdr, body := httpGet(t, n.http+"/todos")
			key := hdr.Get("X-Mesh-Continuity-Request-Key")
			if code != 200 || !strings.HasPrefix(key, "http-route::api.List::") {
				t.Fatalf("GET /todos on %s: %d %q %s", n.name, code, key, body)
			}
			if keys[key] {
				t.Fatalf("request key %s used twice", key)
			}
			keys[key] = true
			for _, m := range []*node{p, s} {
				r := h.waitRecord(m, key, 5*time.Second, completed)
				if r.ReplicaStatus != "mirrored" || r.OwnerNode == r.ReplicaNode || r.ExecutionNode != r.OwnerNode || r.ReplicationCount != 2 {
					t.Fatalf("%s view of %s: %+v", m.name, key, r)
				}
				if r.RoutedRemotely && !strings.Contains(hdr.Get("X-Executed-By"), strings.SplitN(r.OwnerNode, "@", 2)[0]) {
					t.Fatalf("remote route executed by %q, owner %s", hdr.Get("X-Executed-By"), r.OwnerNode)
				}
			}
		}
	}
	send(6)
	s.proc.Kill()
	s.proc.Restart()
	h.waitAuthority(s, "standby", 0, 1, 10*time.Second)
	send(6)

	// Count 3 is refused on the standby, durably, and the handler never runs.
	code, hdr, body := httpGet(t, s.http+"/retry")
	if code != 503 || strings.TrimSpace(body) != `{"error":"unsupported_replication_count:3"}` {
		t.Fatalf("GET /retry: %d %s", code, body)
	}
	key := hdr.Get("X-Mesh-Continuity-Request-Key")
	for _, m := range []*node{p, s} {
		h.waitRecord(m, key, 5*time.Second, func(r recordDoc) error {
			if r.Phase != "rejected" || r.ReplicationCount != 3 || r.Error != "unsupported_replication_count:3" {
				return fmt.Errorf("%+v", r)
			}
			return nil
		})
	}
	if !strings.Contains(s.proc.Log(), "unsupported_replication_count:3") {
		t.Fatal("the refusal reason is not in the standby's log")
	}
}

func TestRoutesSingleNode(t *testing.T) {
	h := newHarness(t)
	n := h.start("solo", "127.0.0.1", "primary", "TESTAPP_HTTP_ADDR="+httpAddr(t))
	h.waitAuthority(n, "primary", 0, 0, 10*time.Second)
	code, _, body := httpGet(t, n.http+"/todos")
	if code != 503 || strings.TrimSpace(body) != `{"error":"replica_required_unavailable"}` {
		t.Fatalf("count 2 alone: %d %s", code, body)
	}
	code, hdr, body := httpGet(t, n.http+"/one")
	if code != 200 {
		t.Fatalf("count 1 alone: %d %s", code, body)
	}
	r := h.waitRecord(n, hdr.Get("X-Mesh-Continuity-Request-Key"), 5*time.Second, completed)
	if !r.FellBackLocally || r.RoutedRemotely || r.Health != "local_only" || r.ReplicationCount != 1 || r.ExecutionNode != n.name {
		t.Fatalf("count 1 record %+v", r)
	}
}
