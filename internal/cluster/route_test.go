package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/meshtest"
)

var thingHits, blockHits atomic.Int64

// release unblocks BlockThing; each test run installs its own channel.
var release atomic.Pointer[chan struct{}]

// ListThings echoes who ran it.
func ListThings(w http.ResponseWriter, r *http.Request) {
	thingHits.Add(1)
	id, _ := IdentityFrom(r.Context())
	w.Header().Set("X-Handled-Key", id.RequestKey)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"method":%q,"path":%q,"id":%q,"n":%d}`, r.Method, r.URL.Path, r.PathValue("id"), thingHits.Load())
}

// RetryThing must never run: it is declared with count 3.
func RetryThing(w http.ResponseWriter, r *http.Request) { panic("count 3 route ran") }

// BlockThing waits until the test releases it or the request ends.
func BlockThing(w http.ResponseWriter, r *http.Request) {
	blockHits.Add(1)
	ch := release.Load()
	select {
	case <-*ch:
	case <-r.Context().Done():
	}
}

var (
	routeDefault = ClusteredDefault(ListThings)
	routeThree   = Clustered(3, RetryThing)
	routeBlock   = Clustered(1, BlockThing)
)

func serveNode(t *testing.T, n *Node, count1 http.Handler) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /things", n.For(routeDefault))
	mux.Handle("POST /things/{id}", n.For(routeDefault))
	mux.Handle("GET /retry", n.For(routeThree))
	mux.Handle("GET /block", n.For(routeBlock))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, hdr map[string]string, body string) (*http.Response, string) {
	t.Helper()
	method := "GET"
	if body != "" {
		method = "POST"
	}
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func pair(t *testing.T) (*Node, *Node) {
	port := freePort(t)
	p := startNode(t, testConfig(t, "primary", "127.0.0.1", port, RolePrimary))
	s := startNode(t, testConfig(t, "standby", "::1", port, RoleStandby))
	eventually(t, 5*time.Second, func() error {
		if len(p.Peers()) != 1 || len(s.Peers()) != 1 {
			return fmt.Errorf("not converged")
		}
		return nil
	})
	return p, s
}

func TestRoutesTwoNodes(t *testing.T) {
	p, s := pair(t)
	ps, ss := serveNode(t, p, nil), serveNode(t, s, nil)
	keys := map[string]bool{}
	check := func(resp *http.Response, body, key string, ingress, owner *Node) {
		t.Helper()
		if resp.StatusCode != http.StatusCreated || resp.Header.Get(HeaderRequestKey) != key {
			t.Fatalf("status %d key %q (want %q) body %s", resp.StatusCode, resp.Header.Get(HeaderRequestKey), key, body)
		}
		// The owner's handler set these; the ingress passes them on.
		if resp.Header.Get("X-Handled-Key") != key || resp.Header.Get("Content-Type") != "application/json" ||
			!strings.Contains(body, `"path":"/things"`) {
			t.Fatalf("response not the handler's: %v %s", resp.Header, body)
		}
		if keys[key] {
			t.Fatalf("key %q reused", key)
		}
		keys[key] = true
		for _, n := range []*Node{p, s} {
			eventually(t, 3*time.Second, func() error {
				r, ok := n.Record(key)
				if !ok || r.Phase != continuity.PhaseCompleted || r.ReplicaStatus != continuity.ReplicaMirrored ||
					r.OwnerNode == r.ReplicaNode || r.ExecutionNode != r.OwnerNode || r.ReplicationCount != 2 {
					return fmt.Errorf("%s view %+v", n.Name(), r)
				}
				if r.OwnerNode != owner.Name() || r.IngressNode != ingress.Name() || r.RoutedRemotely != (owner != ingress) {
					return fmt.Errorf("%s view: ingress %s owner %s remote %v, want ingress %s owner %s",
						n.Name(), r.IngressNode, r.OwnerNode, r.RoutedRemotely, ingress.Name(), owner.Name())
				}
				return nil
			})
		}
	}
	// Without a client key the runtime mints one this node owns: the
	// request runs where it arrived and is mirrored to the other node.
	for i := range 8 {
		srv, ingress := ps, p
		if i%2 == 1 {
			srv, ingress = ss, s
		}
		resp, body := get(t, srv.URL+"/things", nil, "")
		key := resp.Header.Get(HeaderRequestKey)
		if !strings.HasPrefix(key, "http-route::cluster.ListThings::") {
			t.Fatalf("runtime key %q", key)
		}
		check(resp, body, key, ingress, ingress)
	}
	// A client key placed on the other node is forwarded there, executed by
	// its owner, and the owner's status, headers and body come back.
	for i, ingress := range []*Node{p, s, p, s} {
		srv, owner := ps, s
		if ingress == s {
			srv, owner = ss, p
		}
		scope := routeScope(p, "cluster.ListThings", http.Header{})
		key := meshtest.ClientKeyOwnedBy(t, scope, fmt.Sprintf("remote-%d", i), p.Members(), owner.Name())
		resp, body := get(t, srv.URL+"/things", map[string]string{"Idempotency-Key": key}, "")
		check(resp, body, scope+key, ingress, owner)
	}

	// Count 3 is refused, durably, without running the handler.
	resp, body := get(t, ss.URL+"/retry", nil, "")
	if resp.StatusCode != 503 || strings.TrimSpace(body) != `{"error":"unsupported_replication_count:3"}` {
		t.Fatalf("count 3: %d %s", resp.StatusCode, body)
	}
	key := resp.Header.Get(HeaderRequestKey)
	for _, n := range []*Node{p, s} {
		eventually(t, 3*time.Second, func() error {
			r, ok := n.Record(key)
			if !ok || r.Phase != continuity.PhaseRejected || r.ReplicationCount != 3 {
				return fmt.Errorf("%s view %+v", n.Name(), r)
			}
			return nil
		})
	}
}

func TestRouteIdempotencyKeyReplay(t *testing.T) {
	p, s := pair(t)
	ps, ss := serveNode(t, p, nil), serveNode(t, s, nil)
	before := thingHits.Load()
	hdr := map[string]string{"Idempotency-Key": "order-42", "Content-Type": "application/json"}
	r1, b1 := get(t, ps.URL+"/things/7", hdr, `{"qty":1}`)
	if r1.StatusCode != http.StatusCreated || r1.Header.Get(HeaderRequestKey) != routeScope(p, "cluster.ListThings", http.Header{})+"order-42" {
		t.Fatalf("first: %d %s", r1.StatusCode, b1)
	}
	// A retry through the other node gets the same bytes; the handler ran once.
	var r2 *http.Response
	var b2 string
	eventually(t, 3*time.Second, func() error {
		r2, b2 = get(t, ss.URL+"/things/7", hdr, `{"qty":1}`)
		if b2 != b1 || r2.StatusCode != r1.StatusCode {
			return fmt.Errorf("replay %d %s, first %s", r2.StatusCode, b2, b1)
		}
		return nil
	})
	if got := thingHits.Load() - before; got != 1 {
		t.Fatalf("handler ran %d times", got)
	}
	r3, b3 := get(t, ps.URL+"/things/7", hdr, `{"qty":2}`)
	if r3.StatusCode != http.StatusConflict || strings.TrimSpace(b3) != `{"error":"request_key_conflict"}` {
		t.Fatalf("conflict: %d %s", r3.StatusCode, b3)
	}
	r4, b4 := get(t, ps.URL+"/things/7", map[string]string{"Idempotency-Key": "bad key"}, `{}`)
	if r4.StatusCode != 400 || strings.TrimSpace(b4) != `{"error":"request_key_invalid"}` {
		t.Fatalf("invalid key: %d %s", r4.StatusCode, b4)
	}
}

func TestRouteOwnerDiesMidRequest(t *testing.T) {
	ch := make(chan struct{})
	release.Store(&ch)
	defer close(ch)
	blockHits.Store(0)
	p, s := pair(t)
	ps := serveNode(t, p, nil)
	key := meshtest.ClientKeyOwnedBy(t, routeScope(p, "cluster.BlockThing", http.Header{}), "block", p.Members(), s.Name()) // the standby runs it
	type result struct {
		status int
		body   string
	}
	done := make(chan result, 1)
	go func() {
		resp, body := get(t, ps.URL+"/block", map[string]string{"Idempotency-Key": key}, "")
		done <- result{resp.StatusCode, body}
	}()
	eventually(t, 3*time.Second, func() error {
		if blockHits.Load() == 0 {
			return fmt.Errorf("handler not started")
		}
		return nil
	})
	s.crash() // as SIGKILL would: no draining
	select {
	case r := <-done:
		var e map[string]string
		_ = json.Unmarshal([]byte(r.body), &e)
		if r.status != 503 || e["error"] == "" {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	case <-time.After(DefaultRouteTimeout + 2*time.Second):
		t.Fatal("request hung after the owner died")
	}
}

// EchoThing answers "echo".
func EchoThing(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "echo") }

var routeEcho = Clustered(1, EchoThing)

// A node whose handler registry lacks the route's function answers 503
// rather than crash, and a node that has it serves the same wrapped route
// (the cached lookup is per registry).
func TestRouteHandlerMissingFromRegistry(t *testing.T) {
	n := startNode(t, testConfig(t, "solo", "127.0.0.1", freePort(t), RolePrimary), withHandlers(privateRegistry(t)))
	route := routeEcho
	w := httptest.NewRecorder()
	n.For(route).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/things", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), string(continuity.ReasonHandlerNotRegistered)) {
		t.Fatalf("missing handler: %d %s", w.Code, w.Body.String())
	}
	other := startNode(t, testConfig(t, "other", "127.0.0.1", freePort(t), RolePrimary))
	shared := other.For(route)
	for range 2 {
		w = httptest.NewRecorder()
		shared.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/things", nil))
		if w.Code != http.StatusOK || w.Body.String() != "echo" {
			t.Fatalf("registered handler: %d %s", w.Code, w.Body.String())
		}
	}
}

// HeaderThing sets headers, forges the runtime's key header and, when asked,
// panics after setting them.
func HeaderThing(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Private", "from-handler")
	w.Header().Set(HeaderRequestKey, "forged")
	if r.URL.Query().Get("panic") != "" {
		panic("after setting headers")
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok")
}

var routeHeaders = Clustered(1, HeaderThing)

// A route that runs where it arrived sets its headers on the real response:
// a delivered outcome carries them and the runtime's key header whatever the
// handler did to it; an outcome that is not delivered (here a panic) carries
// none of them.
func TestRouteHeadersOfLocalExecution(t *testing.T) {
	n := startNode(t, testConfig(t, "solo", "127.0.0.1", freePort(t), RolePrimary))
	route := n.For(routeHeaders)
	serve := func(target, key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		if key != "" {
			req.Header.Set(HeaderIdempotencyKey, key)
		}
		w := httptest.NewRecorder()
		route.ServeHTTP(w, req)
		return w
	}
	for range 2 { // the second answer is the stored one
		w := serve("/h", "header-key-1")
		if w.Code != http.StatusOK || w.Body.String() != "ok" || w.Header().Get("X-Private") != "from-handler" ||
			w.Header().Get(HeaderRequestKey) != routeScope(n, "cluster.HeaderThing", http.Header{})+"header-key-1" ||
			w.Header().Get("Content-Type") != "text/plain" {
			t.Fatalf("delivered outcome: %d %v %q", w.Code, w.Header(), w.Body.String())
		}
	}
	w := serve("/h?panic=1", "")
	if k := w.Header().Get(HeaderRequestKey); w.Code != http.StatusInternalServerError || w.Header().Get("X-Private") != "" ||
		!strings.HasPrefix(k, continuity.RouteKeyPrefix) || w.Header().Get("Content-Type") != "application/json" ||
		!strings.Contains(w.Body.String(), string(continuity.ReasonHandlerPanicked)) {
		t.Fatalf("panicked handler: %d %v %q", w.Code, w.Header(), w.Body.String())
	}
}

// routePathValues reads the wildcards of the matched pattern, in pattern
// order, and nothing from a pattern without any.
func TestRoutePathValues(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          []string // name=value
	}{
		{"GET /things", "/things", nil},
		{"GET /", "/anything", nil},
		{"GET /things/{id}", "/things/7", []string{"id=7"}},
		{"GET /a/{x}/b/{y}", "/a/1/b/2", []string{"x=1", "y=2"}},
		{"GET /files/{rest...}", "/files/a/b", []string{"rest=a/b"}},
		{"GET /exact/{$}", "/exact/", nil},
	} {
		t.Run(c.pattern, func(t *testing.T) {
			var got []string
			mux := http.NewServeMux()
			mux.HandleFunc(c.pattern, func(w http.ResponseWriter, r *http.Request) {
				for _, f := range routePathValues(r) {
					got = append(got, f.Name+"="+f.Value)
				}
			})
			mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, c.path, nil))
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("path values %v, want %v", got, c.want)
			}
		})
	}
}
