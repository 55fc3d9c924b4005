package logstore

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/meshtest/storetest"
)

// TestCommitHoldPlan: the policy holds a write only while recent writes
// carried many acknowledgements and few wait now, for a fraction of the
// mean write time bounded by max.
func TestCommitHoldPlan(t *testing.T) {
	// warmed returns a policy whose writes each carried acks and took took.
	warmed := func(acks int, took time.Duration) commitHold {
		h := defaultHold()
		for range 64 {
			h.wrote(acks, took)
		}
		return h
	}
	cases := []struct {
		name       string
		h          commitHold
		waiting    int
		hold       time.Duration
		enoughWant int
	}{
		{"fresh store", defaultHold(), 0, 0, 0},
		{"idle: writes carry one", warmed(1, 400*time.Microsecond), 0, 0, 0},
		{"below siblings", warmed(3, 400*time.Microsecond), 0, 0, 0},
		{"busy, nobody waits", warmed(12, 400*time.Microsecond), 0, 40 * time.Microsecond, 9},
		{"busy, few wait", warmed(12, 400*time.Microsecond), 3, 40 * time.Microsecond, 9},
		{"busy, enough wait", warmed(12, 400*time.Microsecond), 9, 0, 0},
		{"slow disk: bounded by max", warmed(12, 5*time.Millisecond), 1, holdMax, 9},
		{"fast disk: a tenth of it", warmed(8, 100*time.Microsecond), 1, 10 * time.Microsecond, 6},
		{"at siblings: enough is at least 2", warmed(holdSiblings, time.Millisecond), 1, holdMax, 3},
		{"disabled", commitHold{}, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hold, enough := c.h.plan(c.waiting)
			if hold != c.hold || enough != c.enoughWant {
				t.Fatalf("plan(%d) with carried %d/16, took %v = %v, %d; want %v, %d",
					c.waiting, c.h.carried, c.h.took, hold, enough, c.hold, c.enoughWant)
			}
		})
	}
}

// TestCommitHoldStopsAfterBurst: once writes carry one acknowledgement
// again, the policy stops holding within a few writes.
func TestCommitHoldStopsAfterBurst(t *testing.T) {
	h := defaultHold()
	for range 64 {
		h.wrote(20, 300*time.Microsecond)
	}
	if hold, _ := h.plan(0); hold == 0 {
		t.Fatal("no hold after a busy run")
	}
	n := 0
	for ; n < 100; n++ {
		if hold, _ := h.plan(1); hold == 0 {
			break
		}
		h.wrote(1, 300*time.Microsecond)
	}
	if n == 0 || n > 16 {
		t.Fatalf("held %d writes after the burst ended; want 1..16", n)
	}
}

// TestHeldWriteCarriesLaterCallers: with the hold in force (an hour long,
// so only the waiting callers end it), no write begins while fewer callers
// wait than the policy asks for, and once they wait one fsync makes all of
// them durable.
func TestHeldWriteCarriesLaterCallers(t *testing.T) {
	h := defaultHold()
	h.carried, h.took, h.max = 16*4, 10*time.Hour, time.Hour // enough = 3
	s, _ := open(t, t.TempDir(), Options{hold: &h})
	defer s.Close()
	var regMu sync.Mutex
	var wg sync.WaitGroup
	putSync := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			regMu.Lock()
			err := s.Put(storetest.Full(fmt.Sprintf("k%d", i), i, continuity.PhaseSubmitted))
			regMu.Unlock()
			if err == nil {
				err = s.Sync()
			}
			if err != nil {
				t.Error(err)
			}
		}()
	}
	putSync(0)
	// The first caller waits; give the writer every chance to begin a
	// write without the policy (it must not with it).
	for deadline := time.Now().Add(10 * time.Second); s.waiting.Load() < 1; {
		if time.Now().After(deadline) {
			t.Fatal("the first Sync never waited")
		}
		runtime.Gosched()
	}
	for until := time.Now().Add(50 * time.Millisecond); time.Now().Before(until); {
		if st := s.Stats(); st.Writes != 0 {
			t.Fatalf("a write began with one caller waiting (%d writes, %d durable); the hold asks for 3", st.Writes, st.Durable)
		}
		runtime.Gosched()
	}
	putSync(1)
	putSync(2)
	wg.Wait()
	st := s.Stats()
	if st.Durable != 3 || st.Log.Syncs != 1 || st.Writes != 1 {
		t.Fatalf("after 3 held Put+Sync calls: %d durable, %d writes, %d fsyncs; want 3, 1, 1",
			st.Durable, st.Writes, st.Log.Syncs)
	}
}

// TestCloseEndsAHold: a write held for callers that never come is written
// at Close, which does not wait for the hold.
func TestCloseEndsAHold(t *testing.T) {
	h := defaultHold()
	h.carried, h.took, h.max = 16*100, 10*time.Hour, time.Hour
	dir := t.TempDir()
	s, _ := open(t, dir, Options{hold: &h})
	if err := s.Put(storetest.Full("k", 1, continuity.PhaseSubmitted)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, rec := open(t, dir, Options{})
	defer s.Close()
	if rec.Pending != 1 {
		t.Fatalf("after reopening: %d pending; want the 1 record Put before Close", rec.Pending)
	}
}
