package cluster

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
)

// PlainThing is the handler of the route benchmarks.
func PlainThing(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) }

var routeBenchOne = Clustered(1, PlainThing)

// BenchmarkClusteredOneStandalone is the runtime's cost per request of a
// count-1 route on a standalone node, next to the bare handler: record,
// completion, response capture and the metrics kept on the way.
func BenchmarkClusteredOneStandalone(b *testing.B) {
	n, err := Start(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer n.crash()
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"plain", http.HandlerFunc(PlainThing)}, {"clustered", n.For(routeBenchOne)}} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/bench", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}

// BenchmarkRouteMetricsPerRequest is what the metrics add to one clustered
// request on its path: the response writer taken from and returned to its
// pool, the route and submission counters.
func BenchmarkRouteMetricsPerRequest(b *testing.B) {
	var m nodeMetrics
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		rw := m.routeStart(w)
		m.submitted(continuity.KindRoute, continuity.OutcomeCreated, nil)
		rw.served(false)
		rw.status = http.StatusOK
		m.routeDone(rw)
	}
}
