package bench

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
)

// BenchmarkRouteKeyed serves keyed Clustered(1) requests (each a new key) on
// a cluster-mode node alone, from a caller with Authorization and Cookie
// headers (creds) and from one without (anon), and reports the process's
// CPU time per request next to the wall time: on a shared machine the CPU
// time is the steadier of the two. It uses only the public surface, so the
// file can be copied into an older tree for an A/B of key scoping.
func BenchmarkRouteKeyed(b *testing.B) {
	n := startAlone(b)
	h := mux(n)
	b.Run("creds", func(b *testing.B) { runKeyed(b, h, true) })
	b.Run("anon", func(b *testing.B) { runKeyed(b, h, false) })
}

func runKeyed(b *testing.B, h http.Handler, creds bool) {
	prefix := runID + "-keyed-" + strconv.FormatBool(creds) + strconv.Itoa(b.N) + "-"
	b.ReportAllocs()
	b.ResetTimer()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	defer func() {
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := (ru1.Utime.Nano() + ru1.Stime.Nano()) - (ru0.Utime.Nano() + ru0.Stime.Nano())
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}()
	for j := range b.N {
		req := httptest.NewRequest(http.MethodGet, "/one", nil)
		if creds {
			req.Header["Authorization"] = []string{"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"}
			req.Header["Cookie"] = []string{"session=6f1c2d3e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978; theme=dark"}
		}
		req.Header["Idempotency-Key"] = []string{prefix + strconv.Itoa(j)}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("HTTP %d %s", w.Code, w.Body.String())
		}
	}
}
