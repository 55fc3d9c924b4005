package cluster

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// Runtime names of the routes of the retry-semantics tests (count 2).
const (
	plainRoute = "reruntest.Plain" // the default: never runs twice for one key
	rerunRoute = "reruntest.Rerun" // Rerunnable
)

// heldRoute is a route handler whose first execution signals that it ran
// (its side effect is done) and then waits for the gate before returning;
// later executions return at once. Every execution is counted.
type heldRoute struct {
	mu      sync.Mutex
	runs    []Identity
	started chan Identity
	gate    chan struct{}
}

func (h *heldRoute) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, _ := IdentityFrom(r.Context())
	h.mu.Lock()
	h.runs = append(h.runs, id)
	first := len(h.runs) == 1
	h.mu.Unlock()
	if first {
		h.started <- id
		select {
		case <-h.gate:
		case <-r.Context().Done():
		}
	}
	fmt.Fprintf(w, "ran %s at epoch %d", id.AttemptID, id.Epoch)
}

func (h *heldRoute) executions() []Identity {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Identity(nil), h.runs...)
}

// A count-2 route request whose owner dies after its handler returned but
// before the client had an answer (the completion never left the owner):
// the surviving node closes the record outcome_unknown, and a retry of the
// same Idempotency-Key there is answered 503 outcome_unknown — not a
// refusal that says the handler did not run — and never runs the handler
// again. With Rerunnable the retry runs the handler again under a new
// attempt at the survivor's new epoch and answers 200, and a further retry
// replays that response.
func TestRouteRetryAfterOwnerLoss(t *testing.T) {
	for _, tc := range []struct {
		name, route string
		rerun       bool
	}{
		{"default answers outcome_unknown", plainRoute, false},
		{"rerunnable runs again", rerunRoute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newAckCluster(t)
			held := &heldRoute{started: make(chan Identity, 4), gate: make(chan struct{})}
			t.Cleanup(func() { close(held.gate) })
			opts := routeOptions{rerun: tc.rerun}
			c.handlers.handlers[tc.route] = &handler{name: tc.route, count: 2, kind: continuity.KindRoute, http: held, route: opts}
			p, s, _, _ := c.pair()
			// The client sends to the primary, which owns the key; the
			// standby mirrors it.
			clientKey, key := clientKeyPlaced(t, tc.route, "retry", p.Name(), p, s)
			send := func(n *Node, ctx context.Context) *httptest.ResponseRecorder {
				req := httptest.NewRequestWithContext(ctx, "POST", "/transfer", strings.NewReader(`{"amount":5}`))
				req.Header.Set(HeaderIdempotencyKey, clientKey)
				w := httptest.NewRecorder()
				(&routeHandler{name: tc.route, count: 2, node: n}).ServeHTTP(w, req)
				return w
			}

			first := make(chan *httptest.ResponseRecorder, 1)
			go func() { first <- send(p, context.Background()) }()
			var ran Identity
			select {
			case ran = <-held.started:
			case <-time.After(10 * time.Second):
				t.Fatal("the handler never started on the owner")
			}
			if ran.RequestKey != key {
				t.Fatalf("ran %+v, want key %s", ran, key)
			}
			waitRecordOf(t, s, key, func(r continuity.Record) error {
				if !r.Pending() || r.ReplicaStatus != continuity.ReplicaMirrored {
					return fmt.Errorf("standby copy %+v", r)
				}
				return nil
			})
			// The handler returns and the owner completes the record, but
			// nothing it writes reaches the standby, and it dies before the
			// client hears back.
			c.fn.Blackhole(p.Name(), s.Name())
			held.gate <- struct{}{}
			waitRecordOf(t, p, key, func(r continuity.Record) error {
				if r.Phase != continuity.PhaseCompleted {
					return fmt.Errorf("owner record %+v", r)
				}
				return nil
			})
			p.crash()
			<-first // the crashed process's answer, which no client received
			c.fn.Heal()
			waitAlone(t, s)
			closed := waitRecordOf(t, s, key, func(r continuity.Record) error {
				if r.Phase != continuity.PhaseRejected {
					return fmt.Errorf("survivor record %+v", r)
				}
				return nil
			})
			if closed.Error != string(continuity.ReasonOutcomeUnknown) {
				t.Fatalf("survivor closed the record with %q, want %s", closed.Error, continuity.ReasonOutcomeUnknown)
			}
			eventually(t, 10*time.Second, func() error {
				if role, epoch := s.Authority(); role != RolePrimary || epoch != 1 {
					return fmt.Errorf("survivor %s at epoch %d", role, epoch)
				}
				return nil
			})

			retry := send(s, context.Background())
			runs := held.executions()
			if !tc.rerun {
				if retry.Code != http.StatusServiceUnavailable || strings.TrimSpace(retry.Body.String()) != `{"error":"outcome_unknown"}` {
					t.Fatalf("retry on the survivor: %d %s, want 503 outcome_unknown", retry.Code, retry.Body)
				}
				if len(runs) != 1 {
					t.Fatalf("handler ran %d times, want once: %+v", len(runs), runs)
				}
				again := send(s, context.Background())
				if again.Code != http.StatusServiceUnavailable || again.Body.String() != retry.Body.String() {
					t.Fatalf("second retry: %d %s, want the same outcome_unknown", again.Code, again.Body)
				}
				return
			}
			if retry.Code != http.StatusOK || len(runs) != 2 {
				t.Fatalf("retry on the survivor: %d %s after %d runs, want 200 from a second run", retry.Code, retry.Body, len(runs))
			}
			rerun := runs[1]
			if rerun.AttemptID == ran.AttemptID || rerun.Epoch != 1 || rerun.RequestKey != key {
				t.Fatalf("re-run identity %+v, first %+v: want a new attempt at epoch 1", rerun, ran)
			}
			if want := fmt.Sprintf("ran %s at epoch 1", rerun.AttemptID); retry.Body.String() != want {
				t.Fatalf("retry body %q, want %q", retry.Body, want)
			}
			rec, _ := s.Record(key)
			if rec.Phase != continuity.PhaseCompleted || rec.AttemptID() != rerun.AttemptID || rec.ExecutionNode != s.Name() {
				t.Fatalf("survivor record after the re-run %+v", rec)
			}
			again := send(s, context.Background())
			if again.Code != http.StatusOK || again.Body.String() != retry.Body.String() || len(held.executions()) != 2 {
				t.Fatalf("retry after the re-run: %d %q (%d runs), want the stored response", again.Code, again.Body, len(held.executions()))
			}
		})
	}
}

// A route declared Rerunnable and declared again without the option is a
// different declaration, refused like any change of options.
func TestRerunnableIsPartOfTheRouteDeclaration(t *testing.T) {
	if (routeOptions{rerun: true}).equal(routeOptions{}) {
		t.Fatal("Rerunnable and default route options compare equal")
	}
	if o := newRouteOptions([]RouteOption{Rerunnable()}); !o.rerun {
		t.Fatal("Rerunnable() did not set the option")
	}
}

// Declared work submitted with Submit whose owner dies while it runs is not
// closed outcome_unknown: the record was acknowledged, so the survivor re-runs
// it under a new attempt (automatic_recovery), and a retry of the same key
// there is a duplicate of that live attempt, then of its completion — never
// a rejection.
func TestSubmittedWorkRetryAfterOwnerLoss(t *testing.T) {
	c := newAckCluster(t)
	p, s, _, _ := c.pair()
	key := keyPlaced(t, "work-retry", p.Name(), p, s)
	ctx := t.Context()
	res, err := p.Submit(ctx, ackDecl(gatedMirrored), key, "payload")
	if err != nil || res.Outcome != OutcomeCreated {
		t.Fatalf("submit: %+v, %v", res, err)
	}
	first := c.awaitStart()
	p.crash()
	waitAlone(t, s)
	second := c.awaitStart()
	if second.RequestKey != key || second.AttemptID == first.AttemptID || second.Epoch != 1 {
		t.Fatalf("recovered execution %+v after %+v, want a new attempt at epoch 1", second, first)
	}
	dup, err := s.Submit(ctx, ackDecl(gatedMirrored), key, "payload")
	if err != nil || dup.Outcome != OutcomeDuplicate || !dup.Record.Pending() || dup.Record.AttemptID() != second.AttemptID {
		t.Fatalf("retry during the recovered run: %+v, %v; want a duplicate of attempt %s", dup, err, second.AttemptID)
	}
	c.work.release()
	waitRecordOf(t, s, key, func(r continuity.Record) error {
		if r.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("record %+v", r)
		}
		return nil
	})
	dup, err = s.Submit(ctx, ackDecl(gatedMirrored), key, "payload")
	if err != nil || dup.Outcome != OutcomeDuplicate || dup.Record.Phase != continuity.PhaseCompleted {
		t.Fatalf("retry after the recovered run: %+v, %v", dup, err)
	}
	if runs := c.work.executions(key); len(runs) != 2 {
		t.Fatalf("work ran %d times, want twice (the lost attempt and its recovery): %+v", len(runs), runs)
	}
}
