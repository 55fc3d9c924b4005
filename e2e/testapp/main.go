// Command testapp is the application the end-to-end tests and benchmarks run
// as real node processes: declared work, clustered routes of each count and a
// plain route, configured only through the MESH_* environment plus
// TESTAPP_HTTP_ADDR.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/e2e/testapp/api"
	"meshgo.dev/mesh/e2e/testapp/work"
)

func main() {
	// Signals are caught before any line a test waits on is printed, so a
	// SIGTERM sent the instant a line appears is handled, never fatal.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv("TESTAPP_DECLARE_RETRY") == "1" {
		mesh.Work(work.Retry, mesh.ReplicationCount(3))
	}
	if os.Getenv("TESTAPP_DECLARE_EXPLODE") == "1" {
		mesh.Work(work.Explode, mesh.ReplicationCount(1))
	}
	var slow mesh.Declaration
	if os.Getenv("TESTAPP_DECLARE_SLOW") == "1" {
		slow = mesh.Work(work.Slow)
	}
	st, err := mesh.StartFromEnv()
	if err != nil {
		logf("[testapp] runtime bootstrap failed reason=%v", err)
		os.Exit(1)
	}
	logf("[testapp] runtime bootstrap mode=%s node=%s cluster_port=%d discovery_seed=%s",
		st.Mode, st.NodeName, st.ClusterPort, st.DiscoverySeed)

	var srv *http.Server
	if addr := os.Getenv("TESTAPP_HTTP_ADDR"); addr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /todos", mesh.ClusteredDefault(api.List))
		mux.Handle("GET /one", mesh.Clustered(1, api.One))
		mux.Handle("GET /retry", mesh.Clustered(3, api.Retry))
		mux.HandleFunc("GET /plain", api.Plain)
		mux.Handle("GET /livez", mesh.LivenessHandler())
		mux.Handle("GET /readyz", mesh.ReadinessHandler())
		mux.Handle("GET /metrics", mesh.MetricsHandler())
		mux.Handle("GET /session", mesh.ClusteredDefault(api.Session))
		mux.Handle("GET /large", mesh.Clustered(1, api.Large))
		mux.Handle("GET /transfer", mesh.ClusteredDefault(api.Transfer))
		mux.Handle("GET /transfer-rerun", mesh.ClusteredDefault(api.TransferRerun, mesh.Rerunnable()))
		if os.Getenv("TESTAPP_DECLARE_SLOW") == "1" {
			// POST /submit?key=K submits work.Slow under K: 200 with the
			// outcome for created and duplicate, 503 otherwise.
			mux.HandleFunc("POST /submit", func(w http.ResponseWriter, r *http.Request) {
				res, err := mesh.Default().Submit(r.Context(), slow, r.URL.Query().Get("key"), "payload")
				switch {
				case err != nil:
					http.Error(w, err.Error(), http.StatusServiceUnavailable)
				case res.Outcome != mesh.OutcomeCreated && res.Outcome != mesh.OutcomeDuplicate:
					http.Error(w, res.Outcome+": "+res.Record.Error, http.StatusServiceUnavailable)
				default:
					fmt.Fprintln(w, res.Outcome)
				}
			})
		}
		mux.HandleFunc("POST /work/settle", settle)
		if os.Getenv("TESTAPP_DEBUG_HEAP") == "1" {
			// Opt-in for the retention tests: the live heap after two
			// full collections, as the retention benchmarks measure it.
			mux.HandleFunc("GET /debug/heap", heap)
		}
		if os.Getenv("TESTAPP_PPROF") == "1" {
			// Opt-in for benchmark runs (loadgen -profile): CPU and heap
			// profiles of the node under load.
			mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
			mux.Handle("GET /debug/pprof/heap", pprof.Handler("heap"))
			mux.Handle("GET /debug/pprof/allocs", pprof.Handler("allocs"))
		}
		// The listener is bound before the ready line is printed, so a
		// request sent as soon as the line appears is accepted.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			logf("[testapp] http: %v", err)
			os.Exit(1)
		}
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logf("[testapp] http: %v", err)
				os.Exit(1)
			}
		}()
		logf("[testapp] HTTP listening on %s", addr)
	}
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if srv != nil {
		_ = srv.Shutdown(shutdown)
	}
	_ = mesh.Shutdown(shutdown)
}

// logf writes one line of the application's own to stderr: as it reads,
// or, when the runtime logs JSON (MESH_LOG_FORMAT=json), as a JSON object
// whose msg is the line, so that every line of the process is JSON.
func logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if strings.TrimSpace(os.Getenv("MESH_LOG_FORMAT")) == "json" {
		b, _ := json.Marshal(map[string]string{"msg": line})
		line = string(b)
	}
	fmt.Fprintln(os.Stderr, line)
}

// heap answers {"heap_alloc":<bytes>,"heap_inuse":<bytes>} after two full
// collections.
func heap(w http.ResponseWriter, r *http.Request) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"heap_alloc":%d,"heap_inuse":%d}`+"\n", ms.HeapAlloc, ms.HeapInuse)
}

// settle submits the typed work work.Settle under ?key= with input
// {"id": ?id=, "sleep_ms": ?sleep_ms=} and, with ?wait=1, waits for its
// result through the handle. It answers
// {"outcome":...,"output":{...}} or {"outcome":...,"error":"..."}.
func settle(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, _ := strconv.Atoi(q.Get("id"))
	sleep, _ := strconv.Atoi(q.Get("sleep_ms"))
	w.Header().Set("Content-Type", "application/json")
	var h *mesh.WorkHandle[work.SettleOutput]
	var err error
	if q.Get("lookup") == "1" {
		h, err = mesh.Lookup[work.SettleOutput](r.Context(), nil, work.SettleDecl, q.Get("key"))
	} else {
		h, err = mesh.SubmitWork(r.Context(), nil, work.Settle, q.Get("key"), work.SettleInput{ID: id, SleepMS: sleep})
	}
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error(), "reason": mesh.RefusalReason(err)})
		return
	}
	doc := map[string]any{"outcome": h.Outcome(), "attempt_id": h.Record().AttemptID()}
	if q.Get("wait") == "1" {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		out, err := h.Result(ctx)
		if err != nil {
			doc["error"] = err.Error()
		} else {
			doc["output"] = out
		}
	}
	_ = json.NewEncoder(w).Encode(doc)
}
