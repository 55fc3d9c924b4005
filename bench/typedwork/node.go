package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/bench/internal/nodeapp"
)

// Numbers is the input of the typed work: two numbers to add.
type Numbers struct {
	A int `json:"a"`
	B int `json:"b"`
}

// Sum is the output of the typed work; it is stored on the record.
type Sum struct {
	Sum int `json:"sum"`
}

// AddOne adds its input's numbers without a mirror (count 1). The runtime
// names declared work after its function, so each count has its own.
func AddOne(ctx context.Context, in Numbers) (Sum, error) { return Sum{Sum: in.A + in.B}, nil }

// AddTwo adds its input's numbers with the default count of 2: the record
// is mirrored to the peer before the work runs, and the output replicated.
func AddTwo(ctx context.Context, in Numbers) (Sum, error) { return Sum{Sum: in.A + in.B}, nil }

var (
	_ = mesh.Work(AddOne, mesh.ReplicationCount(1))
	_ = mesh.Work(AddTwo)
)

// nodeMain runs the process as a node: the runtime from the MESH_*
// environment, and an HTTP listener on TESTAPP_HTTP_ADDR whose GET /run
// runs one closed-loop window of typed submissions on this node and answers
// its figures as JSON.
func nodeMain() int {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /run", serveRun)
	return nodeapp.Run("typedwork", "TESTAPP_HTTP_ADDR", mux)
}

// serveRun runs one window: ?count=1|2 (which work), c (clients), warmup and
// d (durations), prefix (of the request keys, unique per window), and for a
// pair members (both node names) and owner (the node every key must be
// placed on).
func serveRun(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var o window
	var err error
	bad := func(e error) {
		if err == nil {
			err = e
		}
	}
	var e error
	if o.clients, e = strconv.Atoi(q.Get("c")); e != nil {
		bad(e)
	}
	if o.warmup, e = time.ParseDuration(q.Get("warmup")); e != nil {
		bad(e)
	}
	if o.window, e = time.ParseDuration(q.Get("d")); e != nil {
		bad(e)
	}
	o.prefix = q.Get("prefix")
	if m := q.Get("members"); m != "" {
		o.members = strings.Split(m, ",")
	}
	o.owner = q.Get("owner")
	switch q.Get("count") {
	case "1":
		o.op = submitter(AddOne)
	case "2":
		o.op = submitter(AddTwo)
	default:
		bad(fmt.Errorf("count %q: want 1 or 2", q.Get("count")))
	}
	if err == nil && (o.clients < 1 || o.window <= 0 || o.prefix == "") {
		err = errors.New("need c >= 1, d > 0 and a prefix")
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	res := o.run(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// submitter returns one submit→result round trip of fn on the process's
// node: a fresh key, a created record, the output equal to the sum, and the
// record placed on owner when owner is set.
// It returns how long SubmitWork took (the rest of the round trip is the
// wait in Result).
func submitter(fn func(context.Context, Numbers) (Sum, error)) func(ctx context.Context, key, owner string, i int) (time.Duration, error) {
	return func(ctx context.Context, key, owner string, i int) (time.Duration, error) {
		in := Numbers{A: i, B: 7}
		t0 := time.Now()
		h, err := mesh.SubmitWork(ctx, nil, fn, key, in)
		submit := time.Since(t0)
		if err != nil {
			return submit, err
		}
		if h.Outcome() != mesh.OutcomeCreated {
			return submit, fmt.Errorf("%s: outcome %s (%s)", key, h.Outcome(), h.Record().Error)
		}
		if owner != "" && h.Record().OwnerNode != owner {
			return submit, fmt.Errorf("%s: owner %s, want %s", key, h.Record().OwnerNode, owner)
		}
		out, err := h.Result(ctx)
		if err != nil {
			return submit, err
		}
		if out.Sum != in.A+in.B {
			return submit, fmt.Errorf("%s: sum %d, want %d", key, out.Sum, in.A+in.B)
		}
		return submit, nil
	}
}
