package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

type SettleInput struct {
	ID    int    `json:"id"`
	Note  string `json:"note,omitempty"`
	Large int    `json:"large,omitempty"` // output bytes to produce
}

type SettleOutput struct {
	ID      int    `json:"id"`
	Node    string `json:"node"`
	Attempt string `json:"attempt"`
	Padding string `json:"padding,omitempty"`
}

// Settle is typed work: it sees its input and returns an output.
func Settle(ctx context.Context, in SettleInput) (SettleOutput, error) {
	id, _ := IdentityFrom(ctx)
	if in.Note == "fail" {
		return SettleOutput{}, errors.New("card declined")
	}
	return SettleOutput{ID: in.ID, Node: in.Note, Attempt: id.AttemptID, Padding: strings.Repeat("x", in.Large)}, nil
}

var settleDecl = Work(Settle, ReplicationCount(1))

func ChanOut(context.Context, int) (chan int, error) { return nil, nil }
func FuncIn(context.Context, func()) (int, error)    { return 0, nil }
func ComplexField(context.Context, int) (struct{ C complex128 }, error) {
	return struct{ C complex128 }{}, nil
}
func BadMapKey(context.Context, map[[2]int]string) (int, error) { return 0, nil }
func WrongShape(context.Context, int, int) (int, error)         { return 0, nil }
func NoError(context.Context, int) (int, int)                   { return 0, 0 }
func SkippedField(context.Context, struct {
	C chan int `json:"-"`
	N int
}) (int, error) {
	return 0, nil
}

func TestTypedWorkRegistrationRefusesUnencodableTypes(t *testing.T) {
	for _, tt := range []struct {
		name string
		fn   any
		want string
	}{
		{"chan output", ChanOut, "cluster.ChanOut): output type chan int cannot be encoded as JSON"},
		{"func input", FuncIn, "cluster.FuncIn): input type func() cannot be encoded as JSON"},
		{"complex field", ComplexField, "cluster.ComplexField): output type struct { C complex128 } cannot be encoded as JSON: field C"},
		{"map key", BadMapKey, "cluster.BadMapKey): input type map[[2]int]string cannot be encoded as JSON: map key type"},
		{"three inputs", WrongShape, "cluster.WrongShape): func(context.Context, int, int) (int, error) is neither"},
		{"no error", NoError, "cluster.NoError): func(context.Context, int) (int, int) is neither"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				v := recover()
				if v == nil || !strings.Contains(fmt.Sprint(v), tt.want) {
					t.Fatalf("panic %v, want %q", v, tt.want)
				}
			}()
			Work(tt.fn)
		})
	}
	// A field JSON skips does not count.
	r := &registry{handlers: map[string]*handler{}}
	h, err := newWorkHandler("cluster.SkippedField", SkippedField, workOptions{count: 1})
	if err != nil || h.typed == nil || r.add(h) != nil {
		t.Fatalf("skipped field refused: %v", err)
	}
}

func TestTypedWorkSubmitResultDuplicateConflict(t *testing.T) {
	n := standalone(t, Config{WorkMaxResultBytes: 4096})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	res, err := SubmitTyped(ctx, n, settleDecl, "settle:42", SettleInput{ID: 42, Note: "first"})
	if err != nil || res.Outcome != OutcomeCreated {
		t.Fatalf("submit: %+v, %v", res, err)
	}
	data, err := awaitTyped(ctx, n, settleDecl, "settle:42")
	if err != nil {
		t.Fatal(err)
	}
	var out SettleOutput
	if err := DecodeOutput(n, settleDecl, data, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != 42 || out.Node != "first" || out.Attempt != res.Record.AttemptID() {
		t.Fatalf("output %+v, want the work's output for id 42 at %s", out, res.Record.AttemptID())
	}
	rec, _ := n.Record("settle:42")
	if want, _ := json.Marshal(SettleInput{ID: 42, Note: "first"}); string(rec.Input) != string(want) ||
		rec.PayloadHash != workPayloadHash(want) || string(rec.Output) != string(data) {
		t.Fatalf("record input %q hash %q output %q", rec.Input, rec.PayloadHash, rec.Output)
	}

	// The same input: a duplicate answered from the stored output, no run.
	dup, err := SubmitTyped(ctx, n, settleDecl, "settle:42", SettleInput{ID: 42, Note: "first"})
	if err != nil || dup.Outcome != OutcomeDuplicate || dup.Record.Attempt != res.Record.Attempt {
		t.Fatalf("duplicate: %+v, %v", dup, err)
	}
	// Node.Submit with the same encoded input is the same submission.
	raw, err := n.Submit(ctx, settleDecl, "settle:42", `{"id":42,"note":"first"}`)
	if err != nil || raw.Outcome != OutcomeDuplicate {
		t.Fatalf("raw duplicate: %+v, %v", raw, err)
	}
	// Another input: a conflict.
	conf, err := SubmitTyped(ctx, n, settleDecl, "settle:42", SettleInput{ID: 43})
	if err != nil || conf.Outcome != OutcomeConflict {
		t.Fatalf("conflict: %+v, %v", conf, err)
	}

	// A returned error rejects the attempt; Result carries its text.
	if _, err := SubmitTyped(ctx, n, settleDecl, "settle:fail", SettleInput{ID: 1, Note: "fail"}); err != nil {
		t.Fatal(err)
	}
	_, err = awaitTyped(ctx, n, settleDecl, "settle:fail")
	var we *WorkError
	if !errors.As(err, &we) || we.Reason != "handler_error: card declined" {
		t.Fatalf("await failed work: %v", err)
	}

	// An output over the bound is rejected, never truncated.
	if _, err := SubmitTyped(ctx, n, settleDecl, "settle:big", SettleInput{ID: 2, Large: 5000}); err != nil {
		t.Fatal(err)
	}
	_, err = awaitTyped(ctx, n, settleDecl, "settle:big")
	if !errors.As(err, &we) || we.Reason != string(continuity.ReasonResultTooLarge) {
		t.Fatalf("await oversize output: %v", err)
	}
	if rec, _ := n.Record("settle:big"); rec.Output != nil || rec.Phase != continuity.PhaseRejected {
		t.Fatalf("oversize record %+v", rec)
	}
	// An input over the bound is refused before anything is stored.
	_, err = SubmitTyped(ctx, n, settleDecl, "settle:huge", SettleInput{ID: 3, Note: strings.Repeat("n", 5000)})
	if RefusalReason(err) != string(continuity.ReasonInputTooLarge) {
		t.Fatalf("oversize input: %v", err)
	}
	if _, ok := n.Record("settle:huge"); ok {
		t.Fatal("oversize input stored a record")
	}

	// Lookup: by key, for a later caller; unknown keys and wrong types refused.
	if rec, err := LookupTyped(n, settleDecl, "settle:42"); err != nil || rec.Phase != continuity.PhaseCompleted {
		t.Fatalf("lookup: %+v, %v", rec, err)
	}
	if _, err := LookupTyped(n, settleDecl, "settle:none"); RefusalReason(err) != string(continuity.ReasonRequestKeyNotFound) {
		t.Fatalf("lookup unknown: %v", err)
	}
	var wrong int
	if err := DecodeOutput(n, settleDecl, data, &wrong); err == nil {
		t.Fatal("decoded into the wrong type")
	}
	// A wrong input type is refused.
	if _, err := SubmitTyped(ctx, n, settleDecl, "settle:wrong", 42); err == nil {
		t.Fatal("submitted an int to work taking SettleInput")
	}
	// Every wait above has ended: none is left registered.
	if w := n.awaiting.waiting.Load(); w != 0 {
		t.Fatalf("%d waiters left registered after every wait returned", w)
	}
}

// A typed submission on the standby, owned by the primary: the handle on
// the standby returns the primary's output.
func TestTypedWorkResultAcrossNodes(t *testing.T) {
	p, s := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var key string
	for i := range 64 {
		k := fmt.Sprintf("settle-pair:%d", i)
		if continuity.PlaceCanonical(k, continuity.CanonicalMembership(s.Members())).Owner == p.Name() {
			key = k
			break
		}
	}
	if key == "" {
		t.Fatal("no key placed on the primary")
	}
	res, err := SubmitTyped(ctx, s, settlePairDecl, key, SettleInput{ID: 7, Note: "pair"})
	if err != nil || res.Outcome != OutcomeCreated {
		t.Fatalf("submit: %+v, %v", res, err)
	}
	data, err := awaitTyped(ctx, s, settlePairDecl, key)
	if err != nil {
		t.Fatal(err)
	}
	var out SettlePairOutput
	if err := DecodeOutput(s, settlePairDecl, data, &out); err != nil {
		t.Fatal(err)
	}
	if out.ID != 7 || out.Attempt != res.Record.AttemptID() {
		t.Fatalf("output %+v, want id 7 at %s", out, res.Record.AttemptID())
	}
	rec, _ := s.Record(key)
	if rec.ExecutionNode != p.Name() || rec.ReplicaStatus != continuity.ReplicaMirrored {
		t.Fatalf("record on the standby %+v", rec)
	}
}

type SettlePairOutput struct {
	ID      int
	Attempt string
}

// SettlePair reports the attempt it ran under.
func SettlePair(ctx context.Context, in SettleInput) (SettlePairOutput, error) {
	id, _ := IdentityFrom(ctx)
	return SettlePairOutput{ID: in.ID, Attempt: id.AttemptID}, nil
}

var settlePairDecl = Work(SettlePair)

// awaitTyped waits for the output of typed work d under key on n the way a
// handle from mesh.Lookup does.
func awaitTyped(ctx context.Context, n *Node, d Declaration, key string) ([]byte, error) {
	_, o, err := LookupClaimed(n, d, key)
	if err != nil {
		return nil, err
	}
	defer o.Release()
	return o.Output(ctx)
}

// A claimed record can end and be evicted (its version stored, then more
// records completed than the node retains) before the node hands the ended
// version to the claim: a wait on the claim then goes on until the
// hand-over instead of answering request_key_not_found, answers with the
// handed version, and answers the same again once the claim is no longer
// registered.
func TestAwaitClaimedWaitsForTheHandOver(t *testing.T) {
	n := standalone(t, Config{RetainedRecords: 16, WorkMaxResultBytes: 4096})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := SubmitTyped(ctx, n, settleDecl, "settle:evicted", SettleInput{ID: 5, Note: "kept"}); err != nil {
		t.Fatal(err)
	}
	want, err := awaitTyped(ctx, n, settleDecl, "settle:evicted")
	if err != nil {
		t.Fatal(err)
	}
	ended, ok := n.Record("settle:evicted")
	if !ok || ended.Phase != continuity.PhaseCompleted {
		t.Fatalf("record %v %s", ok, ended.Phase)
	}
	for i := range 40 {
		key := fmt.Sprintf("settle:later-%d", i)
		if _, err := SubmitTyped(ctx, n, settleDecl, key, SettleInput{ID: i}); err != nil {
			t.Fatal(err)
		}
		if _, err := awaitTyped(ctx, n, settleDecl, key); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := n.Record("settle:evicted"); ok {
		t.Fatal("the record is still retained: the test evicts nothing")
	}

	// The claim as it stands between the eviction and the hand-over.
	c := claimTyped(n, "settle:evicted")
	done, stop := context.WithCancel(ctx)
	stop()
	if _, err := c.Await(done, settleDecl); !errors.Is(err, context.Canceled) {
		t.Fatalf("before the hand-over: %v, want the wait to go on until its context ended", err)
	}
	n.awaiting.wake(&ended)
	for _, when := range []string{"after the hand-over", "asked again"} {
		got, err := c.Await(ctx, settleDecl)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%s: %q, %v; want %q", when, got, err, want)
		}
	}
	if w := n.awaiting.waiting.Load(); w != 0 {
		t.Fatalf("%d waiters left registered", w)
	}
}
