// Package arbitertest is the conformance suite of the arbiter.Arbiter seam.
// Every implementation runs it against two clients of one store:
//
//	func TestConformance(t *testing.T) {
//		arbitertest.Run(t, func(t *testing.T) arbitertest.Setup { ... })
//	}
//
// The suite checks the safety contract written on arbiter.Arbiter: one
// holder at a time, epochs that rise with every Acquire and never fall, no
// acquisition of a held lease before its expiry and acquisition after it,
// ErrLeaseLost for a superseded holder, Release handing the lease over at
// once, stale epochs refused, one winner per race, local deadlines no later
// than the store's expiry, and no overlap between tenures when both clients
// compete at once. RunUnavailable checks, on a store the test can make
// unreachable, that every call then fails with ErrUnavailable and that the
// holder resumes once the store is back.
//
// Stores whose clock cannot be faked (a real database) run the same checks
// in real time: Wait sleeps, waiting for an expiry polls with a bound, and a
// check that a held lease cannot be taken counts only when the attempt ended
// before the holder's deadline (a slow machine makes a round inconclusive,
// and the suite repeats it, but never makes it pass wrongly).
package arbitertest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/arbiter"
)

// Node names the suite uses for the two clients.
const (
	NodeA = "a@127.0.0.1:4370"
	NodeB = "b@127.0.0.1:4371"
)

// Setup is one fresh store (no lease ever held) and two clients of it.
type Setup struct {
	A, B arbiter.Arbiter  // two clients sharing one store, used as NodeA and NodeB
	Now  func() time.Time // the clients' clock, the one their deadlines are on
	// Wait lets at least d pass on the clients' and the store's clocks:
	// it advances a fake clock, or sleeps.
	Wait func(d time.Duration)
	TTL  time.Duration // the clients' lease TTL
	// Break and Heal make the store unreachable for both clients and
	// reachable again; only RunUnavailable needs them.
	Break, Heal func()
}

// Run runs the suite but RunUnavailable; open is called once per subtest and
// must return a fresh store.
func Run(t *testing.T, open func(t *testing.T) Setup) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, s Setup)
	}{
		{"FirstAcquire", testFirstAcquire},
		{"HeldLeaseCannotBeTaken", testHeldLeaseCannotBeTaken},
		{"ExpiredLeasePassesAtHigherEpoch", testExpiredLeasePasses},
		{"RenewKeepsLease", testRenewKeepsLease},
		{"ReleaseHandsOverAtOnce", testReleaseHandsOver},
		{"StaleSeenCannotLowerEpoch", testStaleSeen},
		{"EpochsRiseOnEveryChange", testEpochsRise},
		{"ConcurrentAcquireOneWinner", testConcurrentAcquire},
		{"DeadlineNotAfterStoreExpiry", testDeadlineNotAfterExpiry},
		{"NoOverlappingLeases", testNoOverlappingLeases},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			if s.A == nil || s.B == nil || s.Now == nil || s.Wait == nil || s.TTL <= 0 {
				t.Fatal("arbitertest: Setup needs A, B, Now, Wait and a positive TTL")
			}
			c.fn(t, s)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustAcquire(t *testing.T, a arbiter.Arbiter, self string, seen uint64) arbiter.Lease {
	t.Helper()
	l, err := a.Acquire(ctx(t), self, seen)
	if err != nil {
		t.Fatalf("%s Acquire(seen %d): %v", self, seen, err)
	}
	if l.Holder != self || l.Epoch <= seen {
		t.Fatalf("%s Acquire(seen %d) = holder %q epoch %d: want holder %q, epoch > %d", self, seen, l.Holder, l.Epoch, self, seen)
	}
	return l
}

func observe(t *testing.T, a arbiter.Arbiter) arbiter.State {
	t.Helper()
	st, err := a.Observe(ctx(t))
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	return st
}

// acquireAfterExpiry polls Acquire until the lease held until about now+TTL
// is won, letting time pass between attempts, for at most 10 TTLs.
func acquireAfterExpiry(t *testing.T, s Setup, a arbiter.Arbiter, self string, seen uint64) arbiter.Lease {
	t.Helper()
	step := s.TTL / 10
	for i := 0; i < 100; i++ {
		l, err := a.Acquire(ctx(t), self, seen)
		if err == nil {
			if l.Holder != self || l.Epoch <= seen {
				t.Fatalf("%s Acquire(seen %d) = %+v: want holder %s and epoch > %d", self, seen, l, self, seen)
			}
			return l
		}
		if !errors.Is(err, arbiter.ErrLeaseHeld) {
			t.Fatalf("%s Acquire(seen %d) while waiting for expiry: %v", self, seen, err)
		}
		s.Wait(step)
	}
	t.Fatalf("%s could not acquire within 10 TTLs (%v)", self, 10*s.TTL)
	return arbiter.Lease{}
}

// conflict checks that err is a *ConflictError matching reason.
func conflict(t *testing.T, err, reason error, holder string, epoch uint64) {
	t.Helper()
	var c *arbiter.ConflictError
	if !errors.Is(err, reason) || !errors.As(err, &c) {
		t.Fatalf("got %v, want a *ConflictError matching %v", err, reason)
	}
	if c.Epoch != epoch || (holder != "" && c.Holder != holder) {
		t.Fatalf("conflict reports holder %q epoch %d, want holder %q epoch %d", c.Holder, c.Epoch, holder, epoch)
	}
}

// refusedWhileHeld checks the refusal err of an Acquire that saw epoch
// held.Epoch-1 or less while held was the store's lease: ErrLeaseHeld naming
// held's holder when the call returned before held's deadline (so the store
// still had it unexpired), else ErrLeaseHeld or ErrStaleEpoch.
func refusedWhileHeld(t *testing.T, s Setup, err error, held arbiter.Lease) {
	t.Helper()
	if s.Now().Before(held.Deadline) || !errors.Is(err, arbiter.ErrStaleEpoch) {
		conflict(t, err, arbiter.ErrLeaseHeld, held.Holder, held.Epoch)
		return
	}
	conflict(t, err, arbiter.ErrStaleEpoch, "", held.Epoch)
}

func testFirstAcquire(t *testing.T, s Setup) {
	st := observe(t, s.A)
	if st.Holder != "" || st.Epoch != 0 || st.Held() {
		t.Fatalf("fresh store: Observe = %+v, want free at epoch 0", st)
	}
	start := s.Now()
	l := mustAcquire(t, s.A, NodeA, 0)
	if l.Epoch != 1 {
		t.Fatalf("first lease epoch %d, want 1", l.Epoch)
	}
	if !l.Deadline.After(start) || l.Deadline.After(start.Add(s.TTL)) {
		t.Fatalf("deadline %v after the request start: want within (0, TTL %v]", l.Deadline.Sub(start), s.TTL)
	}
	for _, c := range []arbiter.Arbiter{s.A, s.B} {
		if st := observe(t, c); st.Holder != NodeA || st.Epoch != 1 || st.Remaining > s.TTL {
			t.Fatalf("Observe after acquire = %+v, want %s at epoch 1 with at most TTL left", st, NodeA)
		}
	}
	// A node that knows a higher epoch (from before the arbiter was
	// configured) acquires above it.
	if err := s.A.Release(ctx(t), l); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if l := mustAcquire(t, s.B, NodeB, 41); l.Epoch != 42 {
		t.Fatalf("Acquire(seen 41) on a store at epoch 1: epoch %d, want 42", l.Epoch)
	}
}

// testHeldLeaseCannotBeTaken: while A's lease is valid, B's Acquire fails
// with ErrLeaseHeld naming A. A round counts only when B's attempt ended
// before A's deadline.
func testHeldLeaseCannotBeTaken(t *testing.T, s Setup) {
	var seen uint64
	for round := 0; round < 10; round++ {
		la := mustAcquire(t, s.A, NodeA, seen)
		seen = la.Epoch
		lb, err := s.B.Acquire(ctx(t), NodeB, seen)
		ended := s.Now()
		if err == nil {
			if ended.Before(la.Deadline) {
				t.Fatalf("%s acquired epoch %d while %s's lease (epoch %d) was still valid for %v", NodeB, lb.Epoch, NodeA, la.Epoch, la.Deadline.Sub(ended))
			}
			t.Logf("round %d inconclusive: A's deadline passed before B's attempt returned", round)
			seen = lb.Epoch
			if err := s.B.Release(ctx(t), lb); err != nil {
				t.Fatalf("Release: %v", err)
			}
			continue
		}
		if !ended.Before(la.Deadline) {
			t.Logf("round %d inconclusive: A's deadline passed before B's attempt returned", round)
			continue
		}
		conflict(t, err, arbiter.ErrLeaseHeld, NodeA, la.Epoch)
		if _, err := s.A.Renew(ctx(t), la); err != nil {
			t.Fatalf("holder's Renew after a refused Acquire: %v", err)
		}
		return
	}
	t.Fatal("10 rounds inconclusive: the machine is too slow for this TTL")
}

func testExpiredLeasePasses(t *testing.T, s Setup) {
	la := mustAcquire(t, s.A, NodeA, 0)
	s.Wait(s.TTL)
	lb := acquireAfterExpiry(t, s, s.B, NodeB, la.Epoch)
	if lb.Epoch <= la.Epoch {
		t.Fatalf("epoch after expiry %d, want > %d", lb.Epoch, la.Epoch)
	}
	if st := observe(t, s.A); st.Holder != NodeB || st.Epoch != lb.Epoch {
		t.Fatalf("Observe = %+v, want %s at epoch %d", st, NodeB, lb.Epoch)
	}
	// The superseded holder can neither renew nor release.
	if _, err := s.A.Renew(ctx(t), la); !errors.Is(err, arbiter.ErrLeaseLost) {
		t.Fatalf("Renew by superseded holder: %v, want ErrLeaseLost", err)
	}
	if err := s.A.Release(ctx(t), la); !errors.Is(err, arbiter.ErrLeaseLost) {
		t.Fatalf("Release by superseded holder: %v, want ErrLeaseLost", err)
	}
	if _, err := s.B.Renew(ctx(t), lb); err != nil {
		t.Fatalf("Renew by the new holder: %v", err)
	}
	if st := observe(t, s.B); st.Holder != NodeB || st.Epoch != lb.Epoch {
		t.Fatalf("the superseded holder's calls changed the lease: %+v", st)
	}
}

func testRenewKeepsLease(t *testing.T, s Setup) {
	l := mustAcquire(t, s.A, NodeA, 0)
	// Renewing every TTL/4 keeps the lease for 3 TTLs.
	for i := 0; i < 12; i++ {
		s.Wait(s.TTL / 4)
		r, err := s.A.Renew(ctx(t), l)
		if err != nil {
			t.Fatalf("renew %d: %v", i, err)
		}
		if r.Epoch != l.Epoch || r.Holder != l.Holder || !r.Deadline.After(l.Deadline) {
			t.Fatalf("renew %d: %+v from %+v: want same holder and epoch, later deadline", i, r, l)
		}
		l = r
	}
	st := observe(t, s.B)
	if st.Holder != NodeA || st.Epoch != l.Epoch || (!st.Held() && s.Now().Before(l.Deadline)) {
		t.Fatalf("Observe after renewals = %+v, want %s holding epoch %d", st, NodeA, l.Epoch)
	}
	// A lease that expired while nobody took it can still be renewed: its
	// epoch was never passed on.
	s.Wait(s.TTL * 3 / 2)
	r, err := s.A.Renew(ctx(t), l)
	if err != nil || r.Epoch != l.Epoch {
		t.Fatalf("renew of an expired lease nobody took: %+v, %v", r, err)
	}
}

func testReleaseHandsOver(t *testing.T, s Setup) {
	la := mustAcquire(t, s.A, NodeA, 0)
	if err := s.A.Release(ctx(t), la); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if st := observe(t, s.B); st.Held() || st.Epoch != la.Epoch {
		t.Fatalf("Observe after release = %+v, want free at epoch %d", st, la.Epoch)
	}
	lb := mustAcquire(t, s.B, NodeB, la.Epoch) // at once: no Wait
	if lb.Epoch != la.Epoch+1 {
		t.Fatalf("epoch after release %d, want %d", lb.Epoch, la.Epoch+1)
	}
	if err := s.A.Release(ctx(t), la); !errors.Is(err, arbiter.ErrLeaseLost) {
		t.Fatalf("second Release: %v, want ErrLeaseLost", err)
	}
	if _, err := s.A.Renew(ctx(t), la); !errors.Is(err, arbiter.ErrLeaseLost) {
		t.Fatalf("Renew after Release: %v, want ErrLeaseLost", err)
	}
}

func testStaleSeen(t *testing.T, s Setup) {
	la := mustAcquire(t, s.A, NodeA, 0)
	if err := s.A.Release(ctx(t), la); err != nil {
		t.Fatal(err)
	}
	lb := mustAcquire(t, s.B, NodeB, la.Epoch)
	// Held by B: A is refused because of the holder.
	_, err := s.A.Acquire(ctx(t), NodeA, la.Epoch)
	refusedWhileHeld(t, s, err, lb)
	if err := s.B.Release(ctx(t), lb); err != nil {
		t.Fatal(err)
	}
	// Free, but A has not seen epoch lb.Epoch: refused, epoch unchanged.
	for _, seen := range []uint64{0, la.Epoch} {
		_, err := s.A.Acquire(ctx(t), NodeA, seen)
		conflict(t, err, arbiter.ErrStaleEpoch, "", lb.Epoch)
		if st := observe(t, s.A); st.Epoch != lb.Epoch || st.Held() {
			t.Fatalf("after a stale Acquire(seen %d): %+v, want free at epoch %d", seen, st, lb.Epoch)
		}
	}
	// Having learnt the epoch, A acquires above it.
	if l := mustAcquire(t, s.A, NodeA, lb.Epoch); l.Epoch != lb.Epoch+1 {
		t.Fatalf("epoch %d, want %d", l.Epoch, lb.Epoch+1)
	}
}

// testEpochsRise changes the holder by release, by expiry and by the holder
// re-acquiring, and checks that every epoch is greater than the last.
func testEpochsRise(t *testing.T, s Setup) {
	var last uint64
	check := func(l arbiter.Lease, how string) {
		t.Helper()
		if l.Epoch <= last {
			t.Fatalf("%s: epoch %d after %d", how, l.Epoch, last)
		}
		if st := observe(t, s.A); st.Epoch != l.Epoch || st.Holder != l.Holder {
			t.Fatalf("%s: Observe = %+v, want %s at %d", how, st, l.Holder, l.Epoch)
		}
		last = l.Epoch
	}
	nodes := []struct {
		a    arbiter.Arbiter
		name string
	}{{s.A, NodeA}, {s.B, NodeB}}
	for i := 0; i < 6; i++ {
		n := nodes[i%2]
		l := mustAcquire(t, n.a, n.name, last)
		check(l, fmt.Sprintf("acquire %d by %s", i, n.name))
		old := l
		l = mustAcquire(t, n.a, n.name, last) // the holder again, at a new epoch
		check(l, "re-acquire by the holder")
		// The lease at the old epoch is superseded even though its holder
		// is the same node (a restarted incarnation re-acquires this way).
		if _, err := n.a.Renew(ctx(t), old); !errors.Is(err, arbiter.ErrLeaseLost) {
			t.Fatalf("Renew at a superseded epoch of the same holder: %v, want ErrLeaseLost", err)
		}
		if i%2 == 0 {
			if err := n.a.Release(ctx(t), l); err != nil {
				t.Fatal(err)
			}
		} else {
			s.Wait(s.TTL)
			o := nodes[(i+1)%2]
			l = acquireAfterExpiry(t, s, o.a, o.name, last)
			check(l, "acquire after expiry")
			if err := o.a.Release(ctx(t), l); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func testConcurrentAcquire(t *testing.T, s Setup) {
	var seen uint64
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		var leases [2]arbiter.Lease
		var errs [2]error
		startGate := make(chan struct{})
		for i, c := range []struct {
			a    arbiter.Arbiter
			name string
		}{{s.A, NodeA}, {s.B, NodeB}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-startGate
				leases[i], errs[i] = c.a.Acquire(context.Background(), c.name, seen)
			}()
		}
		close(startGate)
		wg.Wait()
		winners := 0
		var won arbiter.Lease
		for i := range errs {
			switch {
			case errs[i] == nil:
				winners++
				won = leases[i]
			case errors.Is(errs[i], arbiter.ErrLeaseHeld), errors.Is(errs[i], arbiter.ErrStaleEpoch):
				// The loser's seen is stale once the winner has won; a
				// store that took long enough for the winner's lease to
				// expire before it explained the refusal says so.
			default:
				t.Fatalf("round %d: Acquire: %v", round, errs[i])
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d winners (%+v, %v)", round, winners, leases, errs)
		}
		if won.Epoch != seen+1 {
			t.Fatalf("round %d: winner's epoch %d, want %d", round, won.Epoch, seen+1)
		}
		if st := observe(t, s.A); st.Holder != won.Holder || st.Epoch != won.Epoch {
			t.Fatalf("round %d: Observe = %+v, winner %+v", round, st, won)
		}
		seen = won.Epoch
		c := s.A
		if won.Holder == NodeB {
			c = s.B
		}
		if err := c.Release(ctx(t), won); err != nil {
			t.Fatalf("round %d: Release: %v", round, err)
		}
	}
}

// storeExpiryBound returns the latest local time at which the store's expiry
// can lie, from an Observe: the local time Observe returned plus the time
// the store said was left.
func storeExpiryBound(t *testing.T, s Setup) (time.Time, arbiter.State) {
	t.Helper()
	st := observe(t, s.B)
	return s.Now().Add(st.Remaining), st
}

func testDeadlineNotAfterExpiry(t *testing.T, s Setup) {
	l := mustAcquire(t, s.A, NodeA, 0)
	for i := 0; i < 5; i++ {
		bound, st := storeExpiryBound(t, s)
		if st.Epoch != l.Epoch || st.Holder != l.Holder {
			t.Fatalf("Observe = %+v, want the lease %+v", st, l)
		}
		if l.Deadline.After(bound) {
			t.Fatalf("local deadline is %v after the store's expiry", l.Deadline.Sub(bound))
		}
		s.Wait(s.TTL / 4)
		r, err := s.A.Renew(ctx(t), l)
		if err != nil {
			t.Fatalf("Renew: %v", err)
		}
		l = r
	}
}

// RunUnavailable checks, on a store open returns with Break and Heal set,
// that every call fails with ErrUnavailable while the store is unreachable,
// that a failed Renew leaves the lease as it was, and that the holder renews
// at the same epoch once the store is back.
func RunUnavailable(t *testing.T, open func(t *testing.T) Setup) {
	s := open(t)
	if s.A == nil || s.B == nil || s.Now == nil || s.Wait == nil || s.TTL <= 0 || s.Break == nil || s.Heal == nil {
		t.Fatal("arbitertest: RunUnavailable needs A, B, Now, Wait, a positive TTL, Break and Heal")
	}
	l := mustAcquire(t, s.A, NodeA, 0)
	s.Break()
	r, err := s.A.Renew(ctx(t), l)
	if !errors.Is(err, arbiter.ErrUnavailable) {
		t.Fatalf("Renew on an unreachable store: %v, want ErrUnavailable", err)
	}
	if r.Deadline != l.Deadline || r.Epoch != l.Epoch {
		t.Fatalf("a failed Renew changed the lease: %+v from %+v", r, l)
	}
	if _, err := s.B.Acquire(ctx(t), NodeB, l.Epoch); !errors.Is(err, arbiter.ErrUnavailable) {
		t.Fatalf("Acquire on an unreachable store: %v, want ErrUnavailable", err)
	}
	if _, err := s.B.Observe(ctx(t)); !errors.Is(err, arbiter.ErrUnavailable) {
		t.Fatalf("Observe on an unreachable store: %v, want ErrUnavailable", err)
	}
	if err := s.A.Release(ctx(t), l); !errors.Is(err, arbiter.ErrUnavailable) {
		t.Fatalf("Release on an unreachable store: %v, want ErrUnavailable", err)
	}
	s.Heal()
	// The store is back before anyone took the lease: the holder resumes at
	// the same epoch.
	r, err = s.A.Renew(ctx(t), l)
	if err != nil || r.Epoch != l.Epoch {
		t.Fatalf("Renew after the store came back: %+v, %v", r, err)
	}
}

// tenure is one lease as its holder used it: from the moment Acquire
// returned until its last deadline, or until it started Release.
type tenure struct {
	holder     string
	epoch      uint64
	won, ended time.Time
}

// testNoOverlappingLeases lets both clients compete for the lease at once
// for a while (acquiring, renewing, releasing, letting it expire) and then
// checks the history: every epoch won once, and every tenure ended, on the
// clients' clock, before any later epoch was won. (A node re-acquiring while
// it holds starts a tenure that overlaps its own old one; A, the only client
// that lets its lease expire, stays quiet until its deadline, so the history
// has none.)
func testNoOverlappingLeases(t *testing.T, s Setup) {
	const rounds = 40
	var mu sync.Mutex // guards history
	var history []tenure
	var wg sync.WaitGroup
	fail := make(chan error, 2)
	for i, c := range []struct {
		a    arbiter.Arbiter
		name string
	}{{s.A, NodeA}, {s.B, NodeB}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held *tenure
			var lease arbiter.Lease
			var quiet time.Time // A, silent, does not compete before this
			// end ends the tenure at at, or at the lease's deadline if
			// that came first: the holder stops acting as primary then.
			end := func(at time.Time) {
				mu.Lock()
				held.ended = at
				if lease.Deadline.Before(at) {
					held.ended = lease.Deadline
				}
				history = append(history, *held)
				mu.Unlock()
				held = nil
			}
			for r := 0; r < rounds; r++ {
				c0 := context.Background()
				switch {
				case held == nil && s.Now().Before(quiet):
				case held == nil:
					st, err := c.a.Observe(c0)
					if err != nil {
						fail <- fmt.Errorf("%s Observe: %w", c.name, err)
						return
					}
					l, err := c.a.Acquire(c0, c.name, st.Epoch)
					if err == nil {
						lease, held = l, &tenure{holder: c.name, epoch: l.Epoch, won: s.Now()}
					} else if !errors.Is(err, arbiter.ErrLeaseHeld) && !errors.Is(err, arbiter.ErrStaleEpoch) {
						fail <- fmt.Errorf("%s Acquire: %w", c.name, err)
						return
					}
				case i == 0 && r%7 == 0: // A goes silent: the lease expires
					end(lease.Deadline)
					quiet = lease.Deadline
				case i == 1 && r%5 == 0: // B hands the lease over
					end(s.Now())
					if err := c.a.Release(c0, lease); err != nil && !errors.Is(err, arbiter.ErrLeaseLost) {
						fail <- fmt.Errorf("%s Release: %w", c.name, err)
						return
					}
				default:
					l, err := c.a.Renew(c0, lease)
					if errors.Is(err, arbiter.ErrLeaseLost) {
						end(lease.Deadline)
					} else if err != nil {
						fail <- fmt.Errorf("%s Renew: %w", c.name, err)
						return
					} else {
						lease = l
					}
				}
				s.Wait(s.TTL / 5)
			}
			if held != nil {
				end(lease.Deadline)
			}
		}()
	}
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Fatal(err)
	}
	slices.SortFunc(history, func(a, b tenure) int { return cmp.Compare(a.epoch, b.epoch) })
	if len(history) < 4 {
		t.Fatalf("only %d tenures in %d rounds: the clients hardly competed", len(history), rounds)
	}
	t.Logf("%d tenures, epochs %d..%d", len(history), history[0].epoch, history[len(history)-1].epoch)
	for j := 1; j < len(history); j++ {
		if history[j].epoch == history[j-1].epoch {
			t.Fatalf("epoch %d won twice: %+v", history[j].epoch, history[j-1:j+1])
		}
		for i := 0; i < j; i++ {
			if history[i].ended.After(history[j].won) {
				t.Fatalf("%s still held epoch %d for %v after %s won epoch %d",
					history[i].holder, history[i].epoch, history[i].ended.Sub(history[j].won), history[j].holder, history[j].epoch)
			}
		}
	}
}

// AwaitPassed has b, as NodeB, poll for the lease l that a (NodeA) held
// and stopped renewing, for at most five TTLs: b must win it at l's epoch
// + 1 and never before l's deadline, and a's Renew of l must then fail with
// ErrLeaseLost. Between polls it sleeps a twentieth of the TTL.
func AwaitPassed(t *testing.T, a, b arbiter.Arbiter, l arbiter.Lease, ttl time.Duration) {
	t.Helper()
	for limit := time.Now().Add(5 * ttl); ; {
		lb, err := b.Acquire(t.Context(), NodeB, l.Epoch)
		returned := time.Now()
		if err == nil {
			if returned.Before(l.Deadline) {
				t.Fatalf("%s won epoch %d while %s's lease was valid for another %v", lb.Holder, lb.Epoch, l.Holder, l.Deadline.Sub(returned))
			}
			if lb.Epoch != l.Epoch+1 {
				t.Fatalf("epoch %d, want %d", lb.Epoch, l.Epoch+1)
			}
			break
		} else if !errors.Is(err, arbiter.ErrLeaseHeld) {
			t.Fatalf("Acquire of a lease its holder stopped renewing: %v", err)
		}
		if returned.After(limit) {
			t.Fatal("the lease never passed to the other node")
		}
		time.Sleep(ttl / 20)
	}
	if _, err := a.Renew(t.Context(), l); !errors.Is(err, arbiter.ErrLeaseLost) {
		t.Fatalf("Renew by the old holder: %v, want ErrLeaseLost", err)
	}
}

// NoSecret fails t when err's message holds any of secrets ("" is
// skipped).
func NoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error holds a secret (%q): %v", s, err)
		}
	}
}

// Closer is a store client that holds connections: what a backend's Open
// returns.
type Closer interface {
	arbiter.Arbiter
	Close()
}

// Open opens a client of a store with open and cfg, failing t on an error,
// and closes it when t ends.
func Open[A Closer](t *testing.T, open func(context.Context, arbiter.Config) (A, error), cfg arbiter.Config) A {
	t.Helper()
	a, err := open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// RealClock is the Setup of clients a and b of one store, as NodeA and
// NodeB, whose leases last ttl on the machine's clock.
func RealClock(a, b arbiter.Arbiter, ttl time.Duration) Setup {
	return Setup{A: a, B: b, Now: time.Now, Wait: time.Sleep, TTL: ttl}
}
