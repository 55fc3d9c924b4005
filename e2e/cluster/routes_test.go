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
	return httpGetKey(t, url, "")
}

// httpGetKey is httpGet with an Idempotency-Key header when key is set. It
// sends the request once: the harness waits for a node's HTTP listener
// before a test talks to it, so a refused connection is a failure.
func httpGetKey(t *testing.T, url, key string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
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
			// A runtime key is minted so that the ingress owns it: the
			// request runs where it arrived and is mirrored to the peer.
			checkRouteRecord(t, h, []*node{p, s}, key, hdr, n, n)
		}
	}
	// A client key owned by the other node is forwarded to it: the owner
	// executes the request and its response comes back through the ingress.
	// A client key becomes scope + key, where scope names the route and the
	// caller (here the anonymous one, alike on both nodes): a probe shows it.
	_, probe, _ := httpGetKey(t, p.http+"/todos", "scope-probe")
	scope, ok := strings.CutSuffix(probe.Get("X-Mesh-Continuity-Request-Key"), "scope-probe")
	if !ok || !strings.HasPrefix(scope, "http-route::api.List::caller-") {
		t.Fatalf("keyed request's key %q", probe.Get("X-Mesh-Continuity-Request-Key"))
	}
	sendRemote := func(tag string) {
		for i, ingress := range []*node{p, s} {
			owner := []*node{s, p}[i]
			key := meshtest.ClientKeyOwnedBy(t, scope, "remote-"+tag+"-"+ingress.name, []string{p.name, s.name}, owner.name)
			code, hdr, body := httpGetKey(t, ingress.http+"/todos", key)
			if code != 200 || hdr.Get("X-Mesh-Continuity-Request-Key") != scope+key || !strings.Contains(body, `"handler":"api.List"`) {
				t.Fatalf("GET /todos with %s on %s: %d %v %s", key, ingress.name, code, hdr, body)
			}
			checkRouteRecord(t, h, []*node{p, s}, scope+key, hdr, ingress, owner)
		}
	}
	send(6)
	sendRemote("before")
	s.proc.Kill()
	h.restart(s)
	h.waitAuthority(s, "standby", 0, 1, 10*time.Second)
	send(6)
	sendRemote("after")

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

// checkRouteRecord waits until every node holds key's record as a completed,
// mirrored count-2 route record taken in by ingress and executed by owner,
// and checks the response came from the owner's handler.
func checkRouteRecord(t *testing.T, h *harness, nodes []*node, key string, hdr http.Header, ingress, owner *node) {
	t.Helper()
	if got := hdr.Get("X-Executed-By"); got != owner.name {
		t.Fatalf("%s executed by %q, want the owner %s", key, got, owner.name)
	}
	for _, m := range nodes {
		r := h.waitRecord(m, key, 5*time.Second, completed)
		if r.ReplicaStatus != "mirrored" || r.OwnerNode == r.ReplicaNode || r.ExecutionNode != r.OwnerNode || r.ReplicationCount != 2 ||
			r.OwnerNode != owner.name || r.IngressNode != ingress.name || r.RoutedRemotely != (owner != ingress) {
			t.Fatalf("%s view of %s (ingress %s, owner %s): %+v", m.name, key, ingress.name, owner.name, r)
		}
	}
}
