// Package bench holds the in-process Go benchmarks of the runtime: the cost of
// a clustered route against a plain net/http handler (for CPU profiles), and
// the memory a node keeps while it runs a long stream of records.
//
// Everything here goes through the public API (mesh.Start, Node.For,
// Node.Submit) and, for placement, internal/continuity. The programs next to
// it (loadgen, failover) measure real processes; run.sh runs them all.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/internal/continuity"
)

const cookie = "bench-inprocess-51d0-8Kq2Wn6Yt9Bv3Mx7Cz1Pd"

// One mirrors the testapp's api.One: a count-1 clustered route.
func One(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"handler":"api.One"}`+"\n")
}

// List mirrors the testapp's api.List: the count-2 route behind GET /todos.
func List(w http.ResponseWriter, r *http.Request) {
	id, _ := mesh.IdentityFrom(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Executed-By", "bench")
	fmt.Fprintf(w, `{"handler":"api.List","method":%q,"path":%q,"attempt_id":%q,"epoch":%d}`+"\n", r.Method, r.URL.Path, id.AttemptID, id.Epoch)
}

// Plain is the ordinary net/http baseline.
func Plain(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"handler":"api.One"}`+"\n")
}

var (
	oneRoute  = mesh.Clustered(1, One)
	listRoute = mesh.ClusteredDefault(List)
)

// Noop is count-1 declared work for the retention benchmark.
func Noop(ctx context.Context) (int, error) { return 0, nil }

var noopWork = mesh.Work(Noop, mesh.ReplicationCount(1))

// quietLogger formats what the runtime logs at info level, as a production
// node would, but writes it nowhere so benchmark output stays readable.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// freePair returns a port free on both 127.0.0.1 and [::1].
func freePair(tb testing.TB) int {
	tb.Helper()
	for range 200 {
		l4, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		p := l4.Addr().(*net.TCPAddr).Port
		l6, err := net.Listen("tcp6", fmt.Sprintf("[::1]:%d", p))
		l4.Close()
		if err == nil {
			l6.Close()
			return p
		}
	}
	tb.Fatal("no free port pair")
	return 0
}

func lookupBoth(ctx context.Context, host string) ([]string, error) {
	return []string{"127.0.0.1", "::1"}, nil
}

// startNode starts one in-process cluster node: "primary" on 127.0.0.1 or
// "standby" on [::1], at port.
func startNode(tb testing.TB, role string, port int, dir string) *mesh.Node {
	tb.Helper()
	host := "127.0.0.1"
	r := mesh.RolePrimary
	if role == "standby" {
		host, r = "::1", mesh.RoleStandby
	}
	return startMesh(tb, mesh.Config{
		Mode: mesh.ModeCluster, Cookie: cookie, DiscoverySeed: "localhost", ClusterPort: port,
		NodeName: mesh.NodeName{Name: role, Host: host, Port: port}, Role: r,
		StateDir: dir + "/" + role, DiscoveryInterval: 500 * time.Millisecond, Logger: quietLogger(),
	}, mesh.WithLookupHost(lookupBoth))
}

// startMesh starts a node with cfg and opts and shuts it down (5 s at most)
// when the benchmark ends.
func startMesh(tb testing.TB, cfg mesh.Config, opts ...mesh.Option) *mesh.Node {
	tb.Helper()
	n, err := mesh.Start(cfg, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	return n
}

// startPair starts a primary and a standby in this process and waits until
// they see each other.
func startPair(tb testing.TB) (pri, sby *mesh.Node) {
	tb.Helper()
	port := freePair(tb)
	dir := tb.TempDir()
	pri = startNode(tb, "primary", port, dir)
	sby = startNode(tb, "standby", port, dir)
	deadline := time.Now().Add(20 * time.Second)
	for len(pri.Peers()) != 1 || len(sby.Peers()) != 1 {
		if time.Now().After(deadline) {
			tb.Fatalf("pair did not form: %v %v", pri.Peers(), sby.Peers())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return pri, sby
}

// mux is the testapp's route table served by node n.
func mux(n *mesh.Node) *http.ServeMux {
	m := http.NewServeMux()
	m.Handle("GET /todos", n.For(listRoute))
	m.Handle("GET /one", n.For(oneRoute))
	m.HandleFunc("GET /plain", Plain)
	return m
}

// placedKeys returns n unique keys owned by want over members.
func placedKeys(scope, prefix string, n int, members []string, want string) []string {
	out := make([]string, 0, n)
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if continuity.Place(scope+k, members).Owner == want {
			out = append(out, k)
		}
	}
	return out
}

var runID = fmt.Sprintf("%x", time.Now().UnixNano())

// routeScope returns what the route at path of h puts before a client's
// Idempotency-Key in the request key (http-route::<name>::caller-<tag>::),
// learnt from one keyed request: client keys are placed by the whole key.
func routeScope(tb testing.TB, h http.Handler, path string) string {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Idempotency-Key", runID+"-scope-probe")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	scope, ok := strings.CutSuffix(w.Header().Get("X-Mesh-Continuity-Request-Key"), runID+"-scope-probe")
	if w.Code != http.StatusOK || !ok {
		tb.Fatalf("scope probe of %s: %d %v", path, w.Code, w.Header())
	}
	return scope
}
