package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

func TestRuntimeNameFromSymbol(t *testing.T) {
	tests := []struct {
		sym, want, err string
	}{
		{"example.com/app/work.Add", "work.Add", ""},
		{"main.SyncTodos", "main.SyncTodos", ""},
		{"example.com/app/api.(*Todos).List-fm", "api.Todos.List", ""},
		{"example.com/app/api.Todos.Get-fm", "api.Todos.Get", ""},
		{"example.com/app/api.(*store).List-fm", "", "unexported type"},
		{"example.com/app/work.glob..func1", "", "closures"},
		{"example.com/app/work.Run.func2", "", "closures"},
		{"example.com/app/work.init.func1", "", "closures"},
		{"example.com/app/work.Map[...]", "", "generic"},
	}
	for _, tt := range tests {
		t.Run(tt.sym, func(t *testing.T) {
			got, err := runtimeNameFromSymbol(tt.sym)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.sym) {
					t.Fatalf("err = %v, want mention of %q and the symbol", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestWorkRefusesClosuresAndDuplicates(t *testing.T) {
	mustPanic := func(name, want string, f func()) {
		t.Run(name, func(t *testing.T) {
			defer func() {
				v := recover()
				if v == nil || !strings.Contains(fmt.Sprint(v), want) {
					t.Fatalf("panic %v, want %q", v, want)
				}
			}()
			f()
		})
	}
	mustPanic("closure", "closures and anonymous functions", func() {
		Work(func(context.Context) (int, error) { return 0, nil })
	})
	mustPanic("duplicate", "cluster.Add is already declared", func() { Work(Add) })
	mustPanic("count zero", "replication count must be at least 1", func() { Work(Explode, ReplicationCount(0)) })
}

var explodeCalls, retryCalls, slowCalls atomic.Int64

// Explode panics: declared work that crashes must end rejected.
func Explode(ctx context.Context) (int, error) {
	explodeCalls.Add(1)
	panic("boom")
}

// Retry is declared with an unsupported replication count.
func Retry(ctx context.Context) (int, error) { retryCalls.Add(1); return 0, nil }

// Fails returns an error.
func Fails(ctx context.Context) (int, error) { return 0, errors.New("disk full") }

// Slow blocks until released.
func Slow(ctx context.Context) (int, error) {
	slowCalls.Add(1)
	id, _ := IdentityFrom(ctx)
	if id.RequestKey == "" || id.AttemptID == "" {
		return 0, errors.New("identity missing from context")
	}
	return 0, nil
}

var onceCalls atomic.Int64

// Once counts its runs; declared with count 1.
func Once(ctx context.Context) (int, error) {
	onceCalls.Add(1)
	if _, ok := IdentityFrom(ctx); !ok {
		return 0, errors.New("identity missing from context")
	}
	return 1, nil
}

// privateRegistry declares Explode (count 1), Retry (count 3), Fails and Slow
// outside the package registry, so only nodes started with it run them.
func privateRegistry(t *testing.T) *registry {
	t.Helper()
	r := &registry{handlers: map[string]*handler{}}
	for _, d := range []struct {
		fn    func(context.Context) (int, error)
		count int
	}{{Explode, 1}, {Retry, 3}, {Fails, 1}, {Slow, 2}, {Once, 1}} {
		name, err := runtimeName(d.fn)
		if err != nil {
			t.Fatal(err)
		}
		fn := d.fn
		r.handlers[name] = &handler{name: name, count: d.count, kind: continuity.KindWork,
			run: func(ctx context.Context) error { _, err := fn(ctx); return err }}
	}
	return r
}

func TestSingleNodeCountsPanicsAndErrors(t *testing.T) {
	n := startNode(t, testConfig(t, "solo", "127.0.0.1", freePort(t), RolePrimary), withHandlers(privateRegistry(t)))
	want := map[string]func(continuity.Record) error{
		"startup::cluster.Explode": func(r continuity.Record) error {
			if r.Phase != continuity.PhaseRejected || !strings.Contains(r.Error, "handler_panicked: boom") {
				return fmt.Errorf("%+v", r)
			}
			return nil
		},
		"startup::cluster.Retry": func(r continuity.Record) error {
			if r.Phase != continuity.PhaseRejected || r.Error != "unsupported_replication_count:3" || r.ReplicationCount != 3 {
				return fmt.Errorf("%+v", r)
			}
			return nil
		},
		"startup::cluster.Fails": func(r continuity.Record) error {
			if r.Phase != continuity.PhaseRejected || !strings.Contains(r.Error, "disk full") {
				return fmt.Errorf("%+v", r)
			}
			return nil
		},
		"startup::cluster.Slow": func(r continuity.Record) error {
			if r.Phase != continuity.PhaseCompleted || r.OwnerNode != n.Name() || r.ExecutionNode != n.Name() ||
				r.ReplicaNode != "" || r.ReplicaStatus != continuity.ReplicaUnassigned || r.ReplicationCount != 2 {
				return fmt.Errorf("%+v", r)
			}
			return nil
		},
	}
	eventually(t, 10*time.Second, func() error {
		for key, check := range want {
			r, ok := n.Record(key)
			if !ok {
				return fmt.Errorf("no record %s", key)
			}
			if err := check(r); err != nil {
				return fmt.Errorf("%s: %v", key, err)
			}
		}
		return nil
	})
	if retryCalls.Load() != 0 {
		t.Fatal("count-3 work ran")
	}
	eventually(t, 2*time.Second, func() error {
		if !hasTransition(n, "startup_completed", "startup::cluster.Slow") || !hasTransition(n, "startup_rejected", "startup::cluster.Retry") {
			return errors.New("startup diagnostics missing")
		}
		return nil
	})

	// Submit under a caller key: duplicate and conflict semantics.
	slow := Declaration{RuntimeName: "cluster.Once"}
	if err := func() error {
		r, _ := n.Submit(context.Background(), Declaration{RuntimeName: "cluster.Slow"}, "job-2", "p")
		if r.Outcome != OutcomeRejected || r.Record.Error != "replica_required_unavailable" {
			return fmt.Errorf("count 2 alone: %+v", r)
		}
		return nil
	}(); err != nil {
		t.Fatal(err)
	}
	before := onceCalls.Load()
	ctx := context.Background()
	first, err := n.Submit(ctx, slow, "job-1", "payload-a")
	if err != nil || first.Outcome != OutcomeCreated {
		t.Fatalf("first submit %+v %v", first, err)
	}
	eventually(t, 5*time.Second, func() error {
		if r, _ := n.Record("job-1"); r.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("job-1 %+v", r)
		}
		return nil
	})
	dup, err := n.Submit(ctx, slow, "job-1", "payload-a")
	if err != nil || dup.Outcome != OutcomeDuplicate || dup.Record.Attempt != first.Record.Attempt {
		t.Fatalf("duplicate submit %+v %v", dup, err)
	}
	conflict, err := n.Submit(ctx, slow, "job-1", "payload-b")
	if err != nil || conflict.Outcome != OutcomeConflict {
		t.Fatalf("conflict submit %+v %v", conflict, err)
	}
	if got := onceCalls.Load() - before; got != 1 {
		t.Fatalf("Once ran %d times, want 1", got)
	}
	// A late completion of an old attempt is refused and recorded.
	if _, err := n.reg.Complete("job-1", first.Record.Attempt+7, n.Name(), n.reg.FenceGeneration()); err == nil {
		t.Fatal("stale completion accepted")
	}
	if !hasTransition(n, continuity.TransitionCompletionRejected, "job-1") {
		t.Fatal("completion_rejected missing")
	}
}
