package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

type FlakyInput struct {
	Fails int  `json:"fails"` // how many runs fail before one succeeds
	Panic bool `json:"panic"`
}

var flakyRuns sync.Map // request key -> *int (guarded by flakyMu)
var flakyMu sync.Mutex
var flakyRun atomic.Int64 // numbers the keys of each run of TestWorkRetry

// Flaky fails its first in.Fails runs for a key, then succeeds with the run
// number; with in.Panic it panics.
func Flaky(ctx context.Context, in FlakyInput) (int, error) {
	id, _ := IdentityFrom(ctx)
	flakyMu.Lock()
	v, _ := flakyRuns.LoadOrStore(id.RequestKey, new(int))
	p := v.(*int)
	*p++
	run := *p
	flakyMu.Unlock()
	if in.Panic {
		panic("flaky panic")
	}
	if run <= in.Fails {
		return 0, fmt.Errorf("run %d failed", run)
	}
	return run, nil
}

var flakyDecl = Work(Flaky, ReplicationCount(1), WorkRetry(2, 5*time.Millisecond, 20*time.Millisecond))

func flakyRunCount(key string) int {
	flakyMu.Lock()
	defer flakyMu.Unlock()
	if v, ok := flakyRuns.Load(key); ok {
		return *v.(*int)
	}
	return 0
}

func TestWorkRetry(t *testing.T) {
	n := standalone(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	retries := func(key string) []continuity.Entry {
		var out []continuity.Entry
		for _, e := range n.Diagnostics().Entries {
			if e.Transition == continuity.TransitionWorkRetry && e.RequestKey == key {
				out = append(out, e)
			}
		}
		return out
	}
	meta := func(e continuity.Entry, k string) string {
		for _, kv := range e.Metadata {
			if kv.Key == k {
				return kv.Value
			}
		}
		return ""
	}

	for _, tt := range []struct {
		name       string
		in         FlakyInput
		runs       int
		wantErr    string
		wantOutput string
	}{
		{"succeeds on the second retry", FlakyInput{Fails: 2}, 3, "", "3"},
		{"retries spent", FlakyInput{Fails: 5}, 3, "handler_error: run 3 failed", ""},
		{"panic not retried", FlakyInput{Panic: true}, 1, "handler_panicked: flaky panic", ""},
		{"no failure", FlakyInput{}, 1, "", "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A key of this run's own: the run counts are per key and live
			// as long as the test binary (-count, stress).
			key := fmt.Sprintf("flaky:%s:%d", strings.ReplaceAll(tt.name, " ", "-"), flakyRun.Add(1))
			res, err := SubmitTyped(ctx, n, flakyDecl, key, tt.in)
			if err != nil || res.Outcome != OutcomeCreated {
				t.Fatalf("submit: %+v, %v", res, err)
			}
			out, err := awaitTyped(ctx, n, flakyDecl, key)
			var we *WorkError
			switch {
			case tt.wantErr != "" && (!errors.As(err, &we) || we.Reason != tt.wantErr):
				t.Fatalf("await: %v, want %q", err, tt.wantErr)
			case tt.wantErr == "" && (err != nil || string(out) != tt.wantOutput):
				t.Fatalf("await: %q, %v; want %s", out, err, tt.wantOutput)
			}
			if got := flakyRunCount(key); got != tt.runs {
				t.Fatalf("ran %d times, want %d", got, tt.runs)
			}
			rs := retries(key)
			if len(rs) != tt.runs-1 {
				t.Fatalf("%d work_retry entries, want %d: %+v", len(rs), tt.runs-1, rs)
			}
			prev := res.Record.AttemptID()
			for i, e := range rs {
				if meta(e, "previous_attempt_id") != prev || e.AttemptID == prev || meta(e, "retry") != fmt.Sprint(i+1) ||
					meta(e, "error") != fmt.Sprintf("handler_error: run %d failed", i+1) {
					t.Fatalf("retry %d entry %+v (previous attempt %s)", i+1, e, prev)
				}
				prev = e.AttemptID
			}
			if rec, _ := n.Record(key); rec.AttemptID() != prev {
				t.Fatalf("final attempt %s, want the last retry's %s", rec.AttemptID(), prev)
			}
		})
	}
}

func TestWorkRetryPolicy(t *testing.T) {
	p := retryPolicy{max: 5, initial: 10 * time.Millisecond, maxGap: 35 * time.Millisecond}
	for try, want := range []time.Duration{10, 20, 35, 35, 35} {
		if got := p.delay(try); got != want*time.Millisecond {
			t.Fatalf("delay(%d) = %v, want %v", try, got, want*time.Millisecond)
		}
	}
	huge := retryPolicy{max: 100, initial: time.Second, maxGap: time.Hour}
	if got := huge.delay(90); got != time.Hour {
		t.Fatalf("delay(90) = %v, want the cap", got)
	}
	for _, tt := range []struct {
		p    retryPolicy
		want string
	}{
		{retryPolicy{max: -1, initial: 1, maxGap: 1}, "must not be negative"},
		{retryPolicy{max: 1, initial: 0, maxGap: 1}, "must be positive"},
		{retryPolicy{max: 1, initial: 2, maxGap: 1}, "below the initial delay"},
	} {
		if err := tt.p.validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("validate(%+v) = %v, want %q", tt.p, err, tt.want)
		}
	}
	if !p.retryable(errors.New("x"), 4) || p.retryable(errors.New("x"), 5) || p.retryable(nil, 0) ||
		p.retryable(fmt.Errorf("wrapped: %w", finalError{errors.New("panic")}), 0) {
		t.Fatal("retryable wrong")
	}
}
