package cluster

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
)

// outboxEntry is one outbox entry: a record version for the peers and the
// transition that produced it (replicate's two arguments).
type outboxEntry struct {
	tx  transition
	rec continuity.Record
}

func TestDeliveryRule(t *testing.T) {
	const self, peer = "a@h:1", "b@h:2"
	rec := func(kind continuity.Kind, count uint64, phase continuity.Phase, owner, replica string) continuity.Record {
		return continuity.Record{RequestKey: "k", Kind: kind, ReplicationCount: count, Phase: phase, OwnerNode: owner, ReplicaNode: replica}
	}
	route, work := continuity.KindRoute, continuity.KindWork
	sub, done, rej := continuity.PhaseSubmitted, continuity.PhaseCompleted, continuity.PhaseRejected
	cases := []struct {
		name string
		e    outboxEntry
		want deliveryKind
	}{
		{"new mirrored route attempt waits for its prepare", outboxEntry{txCreated, rec(route, 2, sub, self, peer)}, deliverHeld},
		{"new mirrored work attempt waits for its prepare", outboxEntry{txCreated, rec(work, 2, sub, self, peer)}, deliverHeld},
		{"new unmirrored route run here waits for its outcome", outboxEntry{txCreated, rec(route, 1, sub, self, "")}, deliverHeld},
		{"new forwarded route attempt is batched", outboxEntry{txCreated, rec(route, 1, sub, peer, "")}, deliverBatched},
		{"new unmirrored work is urgent", outboxEntry{txCreated, rec(work, 1, sub, self, "")}, deliverUrgent},
		{"prepared route record run here waits for its outcome", outboxEntry{txPrepared, rec(route, 2, sub, self, peer)}, deliverHeld},
		{"prepared route record run by the peer is batched", outboxEntry{txPrepared, rec(route, 2, sub, peer, self)}, deliverBatched},
		{"prepared work record is urgent", outboxEntry{txPrepared, rec(work, 2, sub, self, peer)}, deliverUrgent},
		{"mirrored route outcome is urgent", outboxEntry{txCompleted, rec(route, 2, done, self, peer)}, deliverUrgent},
		{"mirrored route rejection is urgent", outboxEntry{txRejected, rec(route, 2, rej, self, peer)}, deliverUrgent},
		{"unmirrored route outcome is batched last", outboxEntry{txCompleted, rec(route, 1, done, self, "")}, deliverBatchedLast},
		{"unmirrored route refusal is batched last", outboxEntry{txRefused, rec(route, 1, rej, self, "")}, deliverBatchedLast},
		{"work outcome is urgent", outboxEntry{txCompleted, rec(work, 1, done, self, "")}, deliverUrgent},
		{"rolled over work is urgent", outboxEntry{txRolledOver, rec(work, 2, sub, self, peer)}, deliverUrgent},
		{"answer with a pending route record run here is batched", outboxEntry{txAnswer, rec(route, 1, sub, self, "")}, deliverBatched},
		{"answer with a mirrored route outcome is urgent", outboxEntry{txAnswer, rec(route, 2, done, peer, self)}, deliverUrgent},
		{"outright refusal of an unmirrored route is batched last", outboxEntry{txSubmitRejected, rec(route, 1, rej, self, "")}, deliverBatchedLast},
		{"outright refusal of a mirrored route is urgent", outboxEntry{txSubmitRejected, rec(route, 2, rej, self, peer)}, deliverUrgent},
	}
	for _, c := range cases {
		if got := delivery(c.e.tx, &c.e.rec, self); got != c.want {
			t.Errorf("%s: delivery = %d, want %d", c.name, got, c.want)
		}
	}
}

// TestTransitionsReplicatedInOnePlace keeps replication one mechanism: the
// registry methods whose transitions reach the peer are called only from
// replication.go (through its record* methods), and no other file builds an
// Upsert or queues an encoded frame on a link by hand.
func TestTransitionsReplicatedInOnePlace(t *testing.T) {
	replicated := map[string]bool{
		"Submit": true, "Prepared": true, "Refuse": true, "Reject": true, "Complete": true,
		"CompleteWithResponse": true, "CompleteWithOutput": true, "RetryAttempt": true, "Rollover": true, "Reopen": true, "Merge": true, "MergeOutcome": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(node ast.Node) bool {
			switch x := node.(type) {
			case *ast.CallExpr:
				sel, ok := x.Fun.(*ast.SelectorExpr)
				if !ok {
					break
				}
				if inner, ok := sel.X.(*ast.SelectorExpr); ok && inner.Sel.Name == "reg" && replicated[sel.Sel.Name] && name != "replication.go" {
					t.Errorf("%s: reg.%s called outside replication.go: use its record* method so the transition is replicated", fset.Position(x.Pos()), sel.Sel.Name)
				}
				if sel.Sel.Name == "Enqueue" && name != "replication.go" {
					t.Errorf("%s: an encoded frame queued on a link outside replication.go", fset.Position(x.Pos()))
				}
			case *ast.CompositeLit:
				if sel, ok := x.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Upsert" && name != "replication.go" {
					t.Errorf("%s: an Upsert built outside replication.go", fset.Position(x.Pos()))
				}
			}
			return true
		})
	}
	if checked < 10 {
		t.Fatalf("checked %d source files; the scan is not looking at the package", checked)
	}
}
