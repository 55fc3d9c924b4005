package bench

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// routeCase is one of the load generator's scenarios, in process.
type routeCase struct {
	name  string
	path  string
	owner string // "local", "remote" or "" (no Idempotency-Key)
}

var routeCases = []routeCase{
	{"plain", "/plain", ""},
	{"one-local", "/one", "local"},
	{"one-remote", "/one", "remote"},
	{"todos", "/todos", ""},
	{"one-nokey", "/one", ""},
}

// BenchmarkRouteHandler calls the route table of the primary directly
// (ServeHTTP with a recorder, no HTTP client or server in the way), so ns/op
// and allocs/op are the runtime's own per-request cost. A standby runs in the
// same process and serves forwarded and mirrored work over the real cluster
// link on loopback.
func BenchmarkRouteHandler(b *testing.B) {
	pri, sby := startPair(b)
	members := []string{pri.Name(), sby.Name()}
	h := mux(pri)
	_ = mux(sby) // the standby executes forwarded requests via the shared registry
	for i, rc := range routeCases {
		b.Run(rc.name, func(b *testing.B) {
			var keys []string
			switch rc.owner {
			case "local":
				keys = placedKeys(routeScope(b, h, rc.path), runID+"-h"+strconv.Itoa(i)+"-"+strconv.Itoa(b.N), b.N, members, pri.Name())
			case "remote":
				keys = placedKeys(routeScope(b, h, rc.path), runID+"-h"+strconv.Itoa(i)+"-"+strconv.Itoa(b.N), b.N, members, sby.Name())
			}
			b.ReportAllocs()
			b.ResetTimer()
			for j := range b.N {
				req := httptest.NewRequest(http.MethodGet, rc.path, nil)
				if keys != nil {
					req.Header.Set("Idempotency-Key", keys[j])
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: HTTP %d %s", rc.name, w.Code, w.Body.String())
				}
			}
		})
	}
}

// BenchmarkRouteHTTP serves the primary's route table from an httptest
// server on loopback and drives it with parallel keep-alive clients, like
// the load generator but in one process, so a CPU profile (-cpuprofile)
// shows the runtime's hot spots next to net/http's.
func BenchmarkRouteHTTP(b *testing.B) {
	pri, sby := startPair(b)
	members := []string{pri.Name(), sby.Name()}
	srv := httptest.NewServer(mux(pri))
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i, rc := range routeCases {
		b.Run(rc.name, func(b *testing.B) {
			var keys []string
			switch rc.owner {
			case "local":
				keys = placedKeys(routeScope(b, srv.Config.Handler, rc.path), runID+"-n"+strconv.Itoa(i)+"-"+strconv.Itoa(b.N), b.N, members, pri.Name())
			case "remote":
				keys = placedKeys(routeScope(b, srv.Config.Handler, rc.path), runID+"-n"+strconv.Itoa(i)+"-"+strconv.Itoa(b.N), b.N, members, sby.Name())
			}
			var next atomic.Int64
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, srv.URL+rc.path, nil)
					if keys != nil {
						req.Header.Set("Idempotency-Key", keys[next.Add(1)-1])
					}
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					drain(resp)
					if resp.StatusCode != http.StatusOK {
						b.Errorf("%s: HTTP %d", rc.name, resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// drain reads and closes a response body so its connection is reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// BenchmarkRouteHandlerAlone is BenchmarkRouteHandler on a cluster-mode node
// with no peer: every record is local and nothing is replicated, so the
// difference to BenchmarkRouteHandler/one-local is what replicating a count-1
// record's transitions to the peer costs the ingress node.
func BenchmarkRouteHandlerAlone(b *testing.B) {
	n := startAlone(b)
	h := mux(n)
	cases := []struct {
		name, path string
		key        bool
	}{{"plain", "/plain", false}, {"one-nokey", "/one", false}, {"one-key", "/one", true}}
	for i, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			prefix := runID + "-alone" + strconv.Itoa(i) + "-" + strconv.Itoa(b.N) + "-"
			b.ReportAllocs()
			b.ResetTimer()
			for j := range b.N {
				req := httptest.NewRequest(http.MethodGet, c.path, nil)
				if c.key {
					req.Header.Set("Idempotency-Key", prefix+strconv.Itoa(j))
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: HTTP %d %s", c.name, w.Code, w.Body.String())
				}
			}
		})
	}
}
