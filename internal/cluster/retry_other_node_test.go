package cluster

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// A client that gets its 200 and at once retries the same Idempotency-Key
// on the other node reaches a node that has not yet heard of the key (a
// Clustered(1) record reaches the peer when it ends, batched). That node
// opens a new attempt and forwards it to the owner. The owner already
// completed the request: it must answer with the first response, the same
// bytes, and not run the handler again. The completion's way to the other
// node is delayed on the fault network, so the retry always arrives first.
func TestRetryOnTheOtherNodeBeforeTheCompletionArrivesReplays(t *testing.T) {
	c := newAckCluster(t)
	const route = "acktest.Counter"
	var runs atomic.Int64
	c.handlers.handlers[route] = &handler{name: route, count: 1, kind: continuity.KindRoute,
		http: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "run %d", runs.Add(1))
		})}
	p, s, _, _ := c.pair()

	clientKey, key := clientKeyPlaced(t, route, "retry", p.Name(), p, s)
	serve := func(n *Node) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/counter", nil)
		req.Header.Set(HeaderIdempotencyKey, clientKey)
		(&routeHandler{name: route, count: 1, node: n}).ServeHTTP(w, req)
		return w
	}

	// Everything the primary sends the standby now arrives late: the
	// completion of the first request, and the answer to the forward.
	c.fn.Delay(p.Name(), s.Name(), 300*time.Millisecond)
	first := serve(p)
	if first.Code != http.StatusOK || first.Body.String() != "run 1" {
		t.Fatalf("first request on the owner: %d %q", first.Code, first.Body.String())
	}
	if _, ok := s.Record(key); ok {
		t.Fatal("the standby already knows the key: the retry would not test the race")
	}
	retry := serve(s)
	if retry.Code != http.StatusOK || retry.Body.String() != first.Body.String() {
		t.Fatalf("retry on the other node: %d %q, want the first response %q", retry.Code, retry.Body.String(), first.Body.String())
	}
	if got := runs.Load(); got != 1 {
		t.Fatalf("handler ran %d times, want 1", got)
	}
	c.fn.Heal()
	// Both nodes settle on the first, completed attempt.
	done, _ := p.Record(key)
	eventually(t, 10*time.Second, func() error {
		for _, n := range []*Node{p, s} {
			r, ok := n.Record(key)
			if !ok || r.Phase != continuity.PhaseCompleted || r.Attempt != done.Attempt {
				return fmt.Errorf("%s holds %+v, want completed attempt %d", n.Name(), r, done.Attempt)
			}
		}
		return nil
	})
}
