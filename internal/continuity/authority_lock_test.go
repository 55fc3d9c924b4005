package continuity

import (
	"fmt"
	"sync"
	"testing"
)

// The authority file is written and synced without the registry lock: while
// Persist runs, requests go on under the old authority, the new one is not
// visible yet, and a second authority change waits for the first instead of
// deciding on stale state.
func TestAuthorityPersistRunsOutsideTheRegistryLock(t *testing.T) {
	var (
		r        *Registry
		mu       sync.Mutex // guards calls and running
		calls    []string
		running  int
		entered  = make(chan struct{})
		release  = make(chan struct{})
		firstRun = true
	)
	persist := func(role Role, epoch uint64) error {
		mu.Lock()
		calls = append(calls, fmt.Sprintf("%s@%d", role, epoch))
		running++
		overlap := running > 1
		first := firstRun
		firstRun = false
		mu.Unlock()
		if overlap {
			t.Errorf("persist %s@%d ran while another persist was running", role, epoch)
		}
		if first {
			if got, e := r.Authority(); got != RoleStandby || e != 0 {
				t.Errorf("authority %s@%d visible while primary@1 was being persisted", got, e)
			}
			close(entered)
			<-release
		}
		mu.Lock()
		running--
		mu.Unlock()
		return nil
	}
	r = NewRegistry(Options{Self: "b", Role: RoleStandby, Persist: persist, Now: newClock().Now})

	promoted := make(chan error, 1)
	go func() {
		_, err := r.Promote("a")
		promoted <- err
	}()
	<-entered

	// The registry lock is free: a submission goes through, under the
	// authority that is still in effect.
	d, err := r.Submit(SubmitRequest{Key: "k", Hash: "h", Count: 1, Ingress: "b", Placement: Placement{Owner: "b"}})
	if err != nil || d.Outcome != OutcomeCreated {
		t.Fatalf("Submit during persist: %v %v", d.Outcome, err)
	}
	if d.Record.Epoch != 0 {
		t.Fatalf("record submitted during the persist has epoch %d, want 0", d.Record.Epoch)
	}
	if _, err := r.Complete("k", d.Record.Attempt, "b", r.FenceGeneration()); err != nil {
		t.Fatalf("Complete during persist: %v", err)
	}

	fenced := make(chan error, 1)
	go func() {
		_, err := r.ObserveAuthority("a", RolePrimary, 5, nil)
		fenced <- err
	}()
	mu.Lock()
	n := len(calls)
	mu.Unlock()
	if n != 1 {
		t.Fatalf("persist calls before the first returned: %q", calls)
	}
	close(release)
	if err := <-promoted; err != nil {
		t.Fatalf("Promote: %v", err)
	}
	if err := <-fenced; err != nil {
		t.Fatalf("ObserveAuthority: %v", err)
	}
	if role, epoch := r.Authority(); role != RoleStandby || epoch != 5 {
		t.Fatalf("authority %s@%d, want standby@5", role, epoch)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"primary@1", "standby@5"}; fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("persist calls %q, want %q", calls, want)
	}
	if got := transitions(r); fmt.Sprint(got[len(got)-2:]) != fmt.Sprint([]string{TransitionPromote, TransitionFencedRejoin}) {
		t.Fatalf("transitions %q", got)
	}
}
