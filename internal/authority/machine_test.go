package authority

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

const ms = time.Millisecond

// quarantined returns m after a pause of 10 ms at time at, with nonce 7.
func quarantined(t *testing.T, m Machine, at time.Duration) Machine {
	t.Helper()
	m, eff := m.Step(Paused{Now: at, Gap: 10 * ms, Threshold: 5 * ms, PeerSeen: true, Nonce: 7})
	if eff.Quarantined == nil || !m.Quarantined() {
		t.Fatalf("setup: pause did not quarantine: %+v", eff)
	}
	return m
}

func st(role string, epoch uint64) State { return State{Role: role, Epoch: epoch} }

// Every event against every starting point that decides it: the next
// role, epoch, fence generation, quarantine and deferred loss, and the
// effects asked of the driver.
func TestMachineStep(t *testing.T) {
	standby := NewMachine("b", st(RoleStandby, 1))
	primary := NewMachine("b", st(RolePrimary, 1))
	qStandby := quarantined(t, standby, 100*ms)
	qPrimary := quarantined(t, primary, 100*ms)
	deferred, eff := qStandby.Step(DeferLoss{Lost: "a"})
	if !eff.Deferred || deferred.Deferred() != "a" {
		t.Fatalf("setup: loss not deferred: %+v", eff)
	}

	type want struct {
		state       State
		fenceGen    uint64
		quarantined bool
		deferred    string
		eff         Effects
	}
	fence := func(prev, next State, reason string) Effects {
		return Effects{Persist: &next, Fenced: &Change{Prev: prev, Next: next, Peer: "a", Reason: reason}}
	}
	for _, tt := range []struct {
		name string
		from Machine
		ev   Event
		want want
	}{
		// Fencing.
		{"lower epoch ignored", primary, Observed{"a", RolePrimary, 0}, want{state: st(RolePrimary, 1)}},
		{"equal epoch standby ignored", primary, Observed{"a", RoleStandby, 1}, want{state: st(RolePrimary, 1)}},
		{"higher epoch fences primary", primary, Observed{"a", RolePrimary, 2},
			want{state: st(RoleStandby, 2), fenceGen: 1, eff: fence(st(RolePrimary, 1), st(RoleStandby, 2), "higher_epoch_observed")}},
		{"higher epoch fences standby", standby, Observed{"a", RoleStandby, 3},
			want{state: st(RoleStandby, 3), fenceGen: 1, eff: fence(st(RoleStandby, 1), st(RoleStandby, 3), "higher_epoch_observed")}},
		{"primary tie: later name steps down", primary, Observed{"a", RolePrimary, 1},
			want{state: st(RoleStandby, 1), fenceGen: 1, eff: fence(st(RolePrimary, 1), st(RoleStandby, 1), "primary_tie")}},
		{"primary tie: earlier name stays", NewMachine("0", st(RolePrimary, 1)), Observed{"a", RolePrimary, 1},
			want{state: st(RolePrimary, 1)}},
		{"primary tie with a standby ignored", standby, Observed{"a", RolePrimary, 1}, want{state: st(RoleStandby, 1)}},
		{"fencing releases a quarantine", qPrimary, Observed{"a", RolePrimary, 2},
			want{state: st(RoleStandby, 2), fenceGen: 1, eff: func() Effects {
				e := fence(st(RolePrimary, 1), st(RoleStandby, 2), "higher_epoch_observed")
				e.Released = "fenced"
				return e
			}()}},
		{"fencing hands back a deferred loss", deferred, Observed{"a", RolePrimary, 2},
			want{state: st(RoleStandby, 2), fenceGen: 1, eff: func() Effects {
				e := fence(st(RoleStandby, 1), st(RoleStandby, 2), "higher_epoch_observed")
				e.Released, e.Retry = "fenced", "a"
				return e
			}()}},
		{"no fencing keeps the quarantine", qPrimary, Observed{"a", RoleStandby, 1},
			want{state: st(RolePrimary, 1), quarantined: true}},

		// Pause and quarantine.
		{"pause quarantines", primary, Paused{Now: 50 * ms, Gap: 6 * ms, Threshold: 5 * ms, PeerSeen: true, Nonce: 9},
			want{state: st(RolePrimary, 1), quarantined: true, eff: Effects{Quarantined: &Quarantine{Gap: 6 * ms, Nonce: 9}}}},
		{"gap at the threshold is no pause", primary, Paused{Now: 50 * ms, Gap: 5 * ms, Threshold: 5 * ms, PeerSeen: true, Nonce: 9},
			want{state: st(RolePrimary, 1)}},
		{"no peer ever seen: no quarantine", primary, Paused{Now: 50 * ms, Gap: time.Second, Threshold: 5 * ms, Nonce: 9},
			want{state: st(RolePrimary, 1)}},
		{"already quarantined: no second quarantine", qPrimary, Paused{Now: 500 * ms, Gap: time.Second, Threshold: 5 * ms, PeerSeen: true, Nonce: 9},
			want{state: st(RolePrimary, 1), quarantined: true}},

		// Release.
		{"the ping's nonce releases", qPrimary, NonceConfirmed{Peer: "a", Nonce: 7},
			want{state: st(RolePrimary, 1), eff: Effects{Released: "peer_confirmed:a"}}},
		{"another nonce does not", qPrimary, NonceConfirmed{Peer: "a", Nonce: 8},
			want{state: st(RolePrimary, 1), quarantined: true}},
		{"a nonce without quarantine does nothing", primary, NonceConfirmed{Peer: "a", Nonce: 0},
			want{state: st(RolePrimary, 1)}},
		{"a session started after the pause releases", qPrimary, Resynced{Peer: "a", SessionStart: 101 * ms},
			want{state: st(RolePrimary, 1), eff: Effects{Released: "resynced:a"}}},
		{"a session from before the pause does not", qPrimary, Resynced{Peer: "a", SessionStart: 100 * ms},
			want{state: st(RolePrimary, 1), quarantined: true}},
		{"alone long enough releases", qPrimary, Alone{Now: 201 * ms, Wait: 100 * ms},
			want{state: st(RolePrimary, 1), eff: Effects{Released: "no_peer_reachable"}}},
		{"alone not long enough", qPrimary, Alone{Now: 200 * ms, Wait: 100 * ms},
			want{state: st(RolePrimary, 1), quarantined: true}},
		{"not alone", qPrimary, Alone{Now: time.Second, Wait: 100 * ms, Peers: 1},
			want{state: st(RolePrimary, 1), quarantined: true}},
		{"release hands back the deferred loss", deferred, NonceConfirmed{Peer: "a", Nonce: 7},
			want{state: st(RoleStandby, 1), eff: Effects{Released: "peer_confirmed:a", Retry: "a"}}},

		// Promotion.
		{"standby promotes at the granted epoch", standby, Promote{Lost: "a", Epoch: 4},
			want{state: st(RolePrimary, 4), eff: Effects{Persist: &State{RolePrimary, 4},
				Promoted: &Change{Prev: st(RoleStandby, 1), Next: st(RolePrimary, 4), Peer: "a"}}}},
		{"primary does not promote", primary, Promote{Lost: "a", Epoch: 2},
			want{state: st(RolePrimary, 1), eff: Effects{Err: errors.New("promote: local node is primary")}}},
		{"granted epoch must be above the local one", standby, Promote{Lost: "a", Epoch: 1},
			want{state: st(RoleStandby, 1), eff: Effects{Err: errors.New("promote: granted epoch 1 is not above the local epoch 1")}}},
		{"quarantined since the grant: deferred", qStandby, Promote{Lost: "a", Epoch: 2},
			want{state: st(RoleStandby, 1), quarantined: true, deferred: "a",
				eff: Effects{Deferred: true, Err: errors.New("promote: authority unconfirmed after a pause")}}},
		{"promotion clears a deferred loss", NewMachine("b", st(RoleStandby, 1)).withDeferred("a"), Promote{Lost: "a", Epoch: 2},
			want{state: st(RolePrimary, 2), eff: Effects{Persist: &State{RolePrimary, 2},
				Promoted: &Change{Prev: st(RoleStandby, 1), Next: st(RolePrimary, 2), Peer: "a"}}}},

		// A lease won by a primary.
		{"primary adopts the lease epoch it won", primary, LeaseWon{Epoch: 3},
			want{state: st(RolePrimary, 3), eff: Effects{Persist: &State{RolePrimary, 3},
				Adopted: &Change{Prev: st(RolePrimary, 1), Next: st(RolePrimary, 3), Reason: "lease_acquired"}}}},
		{"a lease at the local epoch changes nothing", primary, LeaseWon{Epoch: 1},
			want{state: st(RolePrimary, 1)}},
		{"a lease below the local epoch is refused", NewMachine("b", st(RolePrimary, 4)), LeaseWon{Epoch: 3},
			want{state: st(RolePrimary, 4), eff: Effects{Err: errors.New("lease won: lease epoch 3 is below the local epoch 4")}}},
		{"a standby adopts no lease epoch", standby, LeaseWon{Epoch: 3},
			want{state: st(RoleStandby, 1), eff: Effects{Err: errors.New("lease won: local node is standby")}}},

		// Deferral.
		{"loss deferred while quarantined", qStandby, DeferLoss{Lost: "a"},
			want{state: st(RoleStandby, 1), quarantined: true, deferred: "a", eff: Effects{Deferred: true}}},
		{"loss handed back when released meanwhile", standby, DeferLoss{Lost: "a"},
			want{state: st(RoleStandby, 1), eff: Effects{Retry: "a"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.from
			got, eff := tt.from.Step(tt.ev)
			if !reflect.DeepEqual(tt.from, before) {
				t.Fatal("Step changed its receiver")
			}
			if got.State() != tt.want.state || got.FenceGen() != tt.want.fenceGen ||
				got.Quarantined() != tt.want.quarantined || got.Deferred() != tt.want.deferred {
				t.Fatalf("next %+v gen %d quarantined %v deferred %q; want %+v gen %d quarantined %v deferred %q",
					got.State(), got.FenceGen(), got.Quarantined(), got.Deferred(),
					tt.want.state, tt.want.fenceGen, tt.want.quarantined, tt.want.deferred)
			}
			if (eff.Err == nil) != (tt.want.eff.Err == nil) || (eff.Err != nil && eff.Err.Error() != tt.want.eff.Err.Error()) {
				t.Fatalf("Err %v, want %v", eff.Err, tt.want.eff.Err)
			}
			eff.Err, tt.want.eff.Err = nil, nil
			if !reflect.DeepEqual(eff, tt.want.eff) {
				t.Fatalf("effects %+v, want %+v", eff, tt.want.eff)
			}
			if !got.Quarantined() && got.QuarantinedSince() != 0 {
				t.Fatalf("released machine keeps its quarantine start %v", got.QuarantinedSince())
			}
		})
	}
}

func (m Machine) withDeferred(lost string) Machine { m.deferred = lost; return m }

// A released quarantine answers only a later pause's nonce: the nonce of
// an earlier ping cannot release a new quarantine.
func TestMachineStaleNonce(t *testing.T) {
	m := quarantined(t, NewMachine("b", st(RolePrimary, 1)), 100*ms)
	m, _ = m.Step(NonceConfirmed{Peer: "a", Nonce: 7})
	m, eff := m.Step(Paused{Now: 300 * ms, Gap: 10 * ms, Threshold: 5 * ms, PeerSeen: true, Nonce: 8})
	if eff.Quarantined == nil {
		t.Fatal("second pause did not quarantine")
	}
	if m, eff = m.Step(NonceConfirmed{Peer: "a", Nonce: 7}); eff.Released != "" || !m.Quarantined() {
		t.Fatalf("the first ping's nonce released the second quarantine: %+v", eff)
	}
	if m, _ = m.Step(Resynced{Peer: "a", SessionStart: 200 * ms}); !m.Quarantined() {
		t.Fatal("a session older than the second pause released it")
	}
}

// Whatever the events, epochs never decrease, the fence generation rises
// exactly with each fencing, and a quarantined node never promotes.
func TestMachineInvariants(t *testing.T) {
	events := []Event{
		Observed{"a", RolePrimary, 0}, Observed{"a", RolePrimary, 1}, Observed{"a", RoleStandby, 2},
		Observed{"c", RolePrimary, 3}, Paused{Now: 10 * ms, Gap: 10 * ms, Threshold: 5 * ms, PeerSeen: true, Nonce: 1},
		NonceConfirmed{"a", 1}, Resynced{"a", 20 * ms}, Alone{Now: time.Second, Wait: 10 * ms},
		Promote{"a", 2}, Promote{"a", 4}, DeferLoss{"a"},
	}
	// Every sequence of three events from two starting points.
	for _, start := range []Machine{NewMachine("b", st(RoleStandby, 1)), NewMachine("b", st(RolePrimary, 1))} {
		for _, e1 := range events {
			for _, e2 := range events {
				for _, e3 := range events {
					m := start
					for _, ev := range []Event{e1, e2, e3} {
						next, eff := m.Step(ev)
						if next.State().Epoch < m.State().Epoch {
							t.Fatalf("%T lowered the epoch %d -> %d", ev, m.State().Epoch, next.State().Epoch)
						}
						if fenced := eff.Fenced != nil; next.FenceGen() != m.FenceGen()+map[bool]uint64{true: 1}[fenced] {
							t.Fatalf("%T: fence generation %d -> %d, fenced %v", ev, m.FenceGen(), next.FenceGen(), fenced)
						}
						if eff.Promoted != nil && m.Quarantined() {
							t.Fatalf("a quarantined node promoted on %T", ev)
						}
						if (eff.Persist != nil) != (next.State() != m.State()) {
							t.Fatalf("%T changed the state %+v -> %+v, persist %v", ev, m.State(), next.State(), eff.Persist)
						}
						m = next
					}
				}
			}
		}
	}
}

func TestPeerArbiter(t *testing.T) {
	lost := Evidence{Self: "b", Lost: "a", Seen: 3, ProbeFailed: true}
	for _, tt := range []struct {
		name   string
		ev     func(Evidence) Evidence
		epoch  uint64
		reason string
		defer_ bool
	}{
		{"lost, probe failed, not quarantined", func(e Evidence) Evidence { return e }, 4, "", false},
		{"another peer connected", func(e Evidence) Evidence { e.PeersConnected = 1; return e }, 0, RefusedPeersRemaining, false},
		{"probe answered", func(e Evidence) Evidence { e.ProbeFailed = false; return e }, 0, RefusedPeerReachable, false},
		{"quarantined", func(e Evidence) Evidence { e.Quarantined = true; return e }, 0, RefusedUnconfirmed, true},
		{"peers remaining wins over quarantine", func(e Evidence) Evidence { e.PeersConnected, e.Quarantined = 2, true; return e },
			0, RefusedPeersRemaining, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			epoch, err := Peer{}.Grant(context.Background(), tt.ev(lost))
			if tt.reason == "" {
				if err != nil || epoch != tt.epoch {
					t.Fatalf("Grant = %d, %v; want %d", epoch, err, tt.epoch)
				}
				return
			}
			r, ok := errors.AsType[*Refusal](err)
			if !ok || r.Reason != tt.reason || r.Defer != tt.defer_ || epoch != 0 {
				t.Fatalf("Grant = %d, %v; want refusal %s (defer %v)", epoch, err, tt.reason, tt.defer_)
			}
		})
	}
	if (Peer{}).Kind() != "peer" {
		t.Fatal("Peer is not reported as peer")
	}
}
