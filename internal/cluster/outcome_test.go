package cluster

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// A count-2 route request whose owner is its ingress: the response leaves
// the owner only once the replica has answered that it holds the completed
// record. With the replica's answers held back (a blackhole from replica to
// owner, so the owner's frames still arrive), the replica holds the outcome
// but the client has no answer; once they flow, the client gets it. Then,
// with the owner killed, a retry of the same key on the survivor gets the
// same status and body, and the handler ran once. The second case kills the
// owner while the answer is still held: the client never got a response,
// and its retry on the survivor gets the one the handler wrote.
func TestRouteResponseWaitsForReplica(t *testing.T) {
	for _, tc := range []struct {
		name         string
		killWhenHeld bool
	}{
		{"answered once the replica holds it", false},
		{"owner killed before the answer left", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newAckCluster(t)
			held := &heldRoute{started: make(chan Identity, 4), gate: make(chan struct{})}
			t.Cleanup(func() { close(held.gate) })
			c.handlers.handlers[plainRoute] = &handler{name: plainRoute, count: 2, kind: continuity.KindRoute, http: held}
			// A peer timeout far above the test's waits: the replica stays
			// linked while its answers are held, so the owner's bounded wait
			// (the peer timeout) is not what ends it.
			pcfg, scfg := c.config("primary", "127.0.0.1", RolePrimary), c.config("standby", "::1", RoleStandby)
			pcfg.PeerTimeout, scfg.PeerTimeout = 20*time.Second, 20*time.Second
			p, s := c.start(pcfg), c.start(scfg)
			waitLinked(t, p, s)
			clientKey, key := clientKeyPlaced(t, plainRoute, "held", p.Name(), p, s)
			send := func(n *Node) *httptest.ResponseRecorder {
				req := httptest.NewRequestWithContext(context.Background(), "POST", "/transfer", strings.NewReader(`{"amount":5}`))
				req.Header.Set(HeaderIdempotencyKey, clientKey)
				w := httptest.NewRecorder()
				(&routeHandler{name: plainRoute, count: 2, node: n}).ServeHTTP(w, req)
				return w
			}

			first := make(chan *httptest.ResponseRecorder, 1)
			go func() { first <- send(p) }()
			var ran Identity
			select {
			case ran = <-held.started:
			case <-time.After(10 * time.Second):
				t.Fatal("the handler never started on the owner")
			}
			if ran.RequestKey != key {
				t.Fatalf("ran %+v, want key %s", ran, key)
			}
			c.fn.Blackhole(s.Name(), p.Name())
			held.gate <- struct{}{}
			for _, n := range []*Node{p, s} {
				waitRecordOf(t, n, key, func(r continuity.Record) error {
					if r.Phase != continuity.PhaseCompleted || len(r.Response) == 0 {
						return fmt.Errorf("%s record %+v", n.Name(), r)
					}
					return nil
				})
			}
			// The replica holds the outcome; its answer is held back, and so
			// is the client's response.
			select {
			case w := <-first:
				t.Fatalf("the client was answered (%d %q) before the replica's acknowledgement", w.Code, w.Body)
			case <-time.After(300 * time.Millisecond):
			}
			want := fmt.Sprintf("ran %s at epoch %d", ran.AttemptID, ran.Epoch)
			if tc.killWhenHeld {
				p.crash()
				<-first // the killed process's answer, which no client received
				c.fn.Heal()
			} else {
				c.fn.Heal()
				var w *httptest.ResponseRecorder
				select {
				case w = <-first:
				case <-time.After(10 * time.Second):
					t.Fatal("no answer after the replica's acknowledgement was let through")
				}
				if w.Code != http.StatusOK || w.Body.String() != want {
					t.Fatalf("first answer %d %q, want 200 %q", w.Code, w.Body, want)
				}
				p.crash()
			}
			waitAlone(t, s)
			retry := send(s)
			if retry.Code != http.StatusOK || retry.Body.String() != want {
				t.Fatalf("retry on the survivor: %d %q, want 200 %q", retry.Code, retry.Body, want)
			}
			if runs := held.executions(); len(runs) != 1 {
				t.Fatalf("handler ran %d times, want once: %+v", len(runs), runs)
			}
		})
	}
}

// A replica that is lost while the owner waits for its answer does not hold
// the response back: the link closes and the client gets the handler's
// answer, held by the owner.
func TestRouteResponseGoesOutWhenReplicaLost(t *testing.T) {
	c := newAckCluster(t)
	held := &heldRoute{started: make(chan Identity, 4), gate: make(chan struct{})}
	t.Cleanup(func() { close(held.gate) })
	c.handlers.handlers[plainRoute] = &handler{name: plainRoute, count: 2, kind: continuity.KindRoute, http: held}
	p, s, _, _ := c.pair()
	clientKey, key := clientKeyPlaced(t, plainRoute, "lost", p.Name(), p, s)
	first := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		req := httptest.NewRequest("POST", "/transfer", strings.NewReader(`{"amount":5}`))
		req.Header.Set(HeaderIdempotencyKey, clientKey)
		w := httptest.NewRecorder()
		(&routeHandler{name: plainRoute, count: 2, node: p}).ServeHTTP(w, req)
		first <- w
	}()
	ran := <-held.started
	c.fn.Blackhole(s.Name(), p.Name())
	held.gate <- struct{}{}
	waitRecordOf(t, s, key, func(r continuity.Record) error {
		if r.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("replica record %+v", r)
		}
		return nil
	})
	s.crash()
	select {
	case w := <-first:
		if want := fmt.Sprintf("ran %s at epoch %d", ran.AttemptID, ran.Epoch); w.Code != http.StatusOK || w.Body.String() != want {
			t.Fatalf("answer %d %q, want 200 %q", w.Code, w.Body, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the owner never answered after its replica was lost")
	}
}

// heldSettleGate holds HeldSettle until the test lets it go.
var heldSettleGate = make(chan struct{})

// HeldSettle is count-2 typed work that waits for heldSettleGate (or its
// context) before returning the attempt it ran under.
func HeldSettle(ctx context.Context, in SettleInput) (SettlePairOutput, error) {
	id, _ := IdentityFrom(ctx)
	select {
	case <-heldSettleGate:
	case <-ctx.Done():
		return SettlePairOutput{}, ctx.Err()
	}
	return SettlePairOutput{ID: in.ID, Attempt: id.AttemptID}, nil
}

var heldSettleDecl = Work(HeldSettle)

// Count-2 typed work completed on its owner: Result (awaitTyped) on the
// owner returns the output only once the replica holds the completion, so
// the output a caller saw is the one a retry reads on the survivor.
func TestWorkResultWaitsForReplica(t *testing.T) {
	c := newAckCluster(t)
	h, ok := defaultRegistry.get(heldSettleDecl.RuntimeName)
	if !ok {
		t.Fatal("HeldSettle is not declared")
	}
	c.handlers.handlers[h.name] = h
	pcfg, scfg := c.config("primary", "127.0.0.1", RolePrimary), c.config("standby", "::1", RoleStandby)
	pcfg.PeerTimeout, scfg.PeerTimeout = 20*time.Second, 20*time.Second
	p, s := c.start(pcfg), c.start(scfg)
	waitLinked(t, p, s)
	key := keyPlaced(t, "held-settle", p.Name(), p, s)
	ctx := t.Context()
	res, err := SubmitTyped(ctx, p, heldSettleDecl, key, SettleInput{ID: 3})
	if err != nil || res.Outcome != OutcomeCreated {
		t.Fatalf("submit: %+v, %v", res, err)
	}
	c.fn.Blackhole(s.Name(), p.Name())
	heldSettleGate <- struct{}{}
	waitRecordOf(t, s, key, func(r continuity.Record) error {
		if r.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("replica record %+v", r)
		}
		return nil
	})
	type result struct {
		data []byte
		err  error
	}
	got := make(chan result, 1)
	go func() { d, err := awaitTyped(ctx, p, heldSettleDecl, key); got <- result{d, err} }()
	select {
	case r := <-got:
		t.Fatalf("Result returned %s, %v before the replica's acknowledgement", r.data, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	c.fn.Heal()
	select {
	case r := <-got:
		var out SettlePairOutput
		if r.err != nil || DecodeOutput(p, heldSettleDecl, r.data, &out) != nil || out.ID != 3 || out.Attempt != res.Record.AttemptID() {
			t.Fatalf("Result %s, %v; want id 3 at %s", r.data, r.err, res.Record.AttemptID())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Result never returned after the replica's acknowledgement was let through")
	}
}
