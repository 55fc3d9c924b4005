// Command app is the node program of the chaos soak (e2e/chaos). It uses
// only the public API of package mesh: a Clustered(2) route, a Clustered(1)
// route and Node.Submit of declared work under a client-chosen key, and it
// appends every execution to a side-effect log outside the node's state.
//
// Environment: the MESH_* contract, plus CHAOS_HTTP_ADDR (the HTTP listen
// address) and CHAOS_EFFECT_LOG (the side-effect log file).
//
// HTTP:
//
//	POST /r2        Clustered(2) route; Idempotency-Key carries the key
//	POST /r1        Clustered(1) route; Idempotency-Key carries the key
//	POST /submit    Submit(soak.Apply, key=?key, payload=body); answers
//	                {"outcome","phase","attempt","epoch","owner","error"}
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/e2e/chaos/app/soak"
)

var effect = mesh.Work(soak.Apply)

func main() {
	st, err := mesh.StartFromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "[chaosapp] runtime bootstrap failed reason=%v\n", err)
		os.Exit(1)
	}
	if err := soak.Open(os.Getenv("CHAOS_EFFECT_LOG"), st.NodeName); err != nil {
		fmt.Fprintf(os.Stderr, "[chaosapp] %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "[chaosapp] runtime bootstrap mode=%s node=%s\n", st.Mode, st.NodeName)

	mux := http.NewServeMux()
	mux.Handle("POST /r2", mesh.Clustered(2, soak.Pair))
	mux.Handle("POST /r1", mesh.Clustered(1, soak.Single))
	mux.HandleFunc("POST /submit", submit)
	addr := os.Getenv("CHAOS_HTTP_ADDR")
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "[chaosapp] http: %v\n", err)
			os.Exit(1)
		}
	}()
	fmt.Fprintf(os.Stderr, "[chaosapp] HTTP listening on %s\n", addr)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	_ = mesh.Shutdown(shutdown)
}

// submitAnswer is the JSON answer of POST /submit.
type submitAnswer struct {
	Outcome string `json:"outcome"`
	Phase   string `json:"phase"`
	Attempt string `json:"attempt"`
	Epoch   uint64 `json:"epoch"`
	Owner   string `json:"owner"`
	Error   string `json:"error"`
}

// submit answers 200 for created and duplicate, 409 for a conflict, 503 for
// a rejection or a duplicate of a rejected record (error = the record's
// reason, as the runtime gave it) and 503 when Submit itself failed (error =
// its message).
func submit(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	payload, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil || key == "" {
		writeJSON(w, http.StatusBadRequest, submitAnswer{Error: "key and payload required"})
		return
	}
	res, err := mesh.Default().Submit(r.Context(), effect, key, string(payload))
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, submitAnswer{Error: err.Error()})
		return
	}
	rec := res.Record
	a := submitAnswer{Outcome: res.Outcome, Phase: string(rec.Phase), Attempt: rec.AttemptID(),
		Epoch: rec.Epoch, Owner: rec.OwnerNode, Error: rec.Error}
	status := http.StatusOK
	switch res.Outcome {
	case mesh.OutcomeConflict:
		status = http.StatusConflict
	case mesh.OutcomeRejected:
		status = http.StatusServiceUnavailable
	case mesh.OutcomeDuplicate:
		if rec.Phase == "rejected" {
			status = http.StatusServiceUnavailable
		}
	}
	writeJSON(w, status, a)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(v)
	_, _ = w.Write(append(b, '\n'))
}
