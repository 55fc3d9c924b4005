// Package soak holds the handlers and the declared work of the chaos node
// program, and the side-effect log every execution of them appends to.
//
// The log lives outside the nodes' state, so it tells what really ran even
// when a node was killed before its record reached the peer. Each execution
// is one JSON line written with a single write(2) on a file opened with
// O_APPEND: a SIGKILL can lose a line that was never written, but never tear
// one or interleave two, even with both nodes appending to the same file.
package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"meshgo.dev/mesh"
)

// Kinds of execution, as written to the side-effect log and answered to
// clients.
const (
	KindRoute2 = "route2" // a Clustered(2) route
	KindRoute1 = "route1" // a Clustered(1) route
	KindWork   = "work"   // declared work run through Node.Submit
)

// Effect is one line of the side-effect log: one execution of a handler or
// of declared work.
type Effect struct {
	Kind    string    `json:"kind"`
	Key     string    `json:"key"`
	Attempt string    `json:"attempt"`
	Epoch   uint64    `json:"epoch"`
	Node    string    `json:"node"`
	Time    time.Time `json:"time"`
}

var (
	mu   sync.Mutex // guards log and node
	log  *os.File
	node string
)

// Open makes every later execution append to the file at path, naming node
// as the executing node. An empty path disables the log.
func Open(path, nodeName string) error {
	mu.Lock()
	defer mu.Unlock()
	node = nodeName
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open side-effect log: %w", err)
	}
	log = f
	return nil
}

// record appends one execution to the log and returns it. A failed write
// stops the process: a soak whose evidence is incomplete must not go on.
func record(ctx context.Context, kind string) Effect {
	id, _ := mesh.IdentityFrom(ctx)
	mu.Lock()
	e := Effect{Kind: kind, Key: id.RequestKey, Attempt: id.AttemptID, Epoch: id.Epoch, Node: node, Time: time.Now().UTC()}
	f := log
	mu.Unlock()
	if f == nil {
		return e
	}
	line, _ := json.Marshal(e)
	if _, err := f.Write(append(line, '\n')); err != nil { // one write(2) per line
		fmt.Fprintf(os.Stderr, "[chaosapp] side-effect log write failed: %v\n", err)
		os.Exit(2)
	}
	return e
}

// Pair is the Clustered(2) route: it records its execution and answers with
// the identity it ran under, so a replay can be compared byte for byte.
func Pair(w http.ResponseWriter, r *http.Request) { answer(w, record(r.Context(), KindRoute2)) }

// Single is the Clustered(1) route.
func Single(w http.ResponseWriter, r *http.Request) { answer(w, record(r.Context(), KindRoute1)) }

func answer(w http.ResponseWriter, e Effect) {
	w.Header().Set("Content-Type", "application/json")
	body, _ := json.Marshal(map[string]any{"kind": e.Kind, "key": e.Key, "attempt": e.Attempt, "epoch": e.Epoch, "node": e.Node})
	_, _ = w.Write(append(body, '\n'))
}

// Apply is the declared work clients submit under their own keys (count 2).
func Apply(ctx context.Context) (int, error) {
	record(ctx, KindWork)
	return 0, nil
}
