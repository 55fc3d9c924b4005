package continuity

import (
	"errors"
	"slices"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/authority"
)

// StepAuthority records each effect of the authority machine once, stamped
// with the authority after the step, publishes the quarantine for the
// lock-free readers, and leaves everything as it was when a change cannot
// be persisted.
func TestStepAuthorityDiagnostics(t *testing.T) {
	p := &persistLog{}
	r := NewRegistry(Options{Self: "b", Role: RoleStandby, Epoch: 1, Persist: p.persist, Now: newClock().Now})
	kv := func(e Entry, key string) string {
		for _, m := range e.Metadata {
			if m.Key == key {
				return m.Value
			}
		}
		return ""
	}

	eff, err := r.StepAuthority(authority.Paused{Now: time.Second, Gap: 1500 * time.Millisecond, Threshold: time.Second, PeerSeen: true, Nonce: 3}, nil)
	if err != nil || eff.Quarantined == nil || !r.Quarantined() {
		t.Fatalf("pause: %+v, %v, quarantined %v", eff, err, r.Quarantined())
	}
	last := entries(r)[len(entries(r))-1]
	if last.Transition != TransitionQuarantined || last.Reason != string(ReasonQuarantined) || kv(last, "pause_ms") != "1500" {
		t.Fatalf("quarantine entry %+v", last)
	}

	if _, err := r.StepAuthority(authority.DeferLoss{Lost: "a"}, nil); err != nil {
		t.Fatal(err)
	}
	eff, _ = r.StepAuthority(authority.NonceConfirmed{Peer: "a", Nonce: 3}, nil)
	if eff.Released != "peer_confirmed:a" || eff.Retry != "a" || r.Quarantined() {
		t.Fatalf("release: %+v, quarantined %v", eff, r.Quarantined())
	}
	last = entries(r)[len(entries(r))-1]
	if last.Transition != TransitionQuarantineReleased || kv(last, "confirmed_by") != "peer_confirmed:a" {
		t.Fatalf("release entry %+v", last)
	}

	p.err = errors.New("disk full")
	n := len(entries(r))
	if _, err := r.PromoteAt("a", 4); !errors.Is(err, p.err) {
		t.Fatalf("promotion with a failing disk: %v", err)
	}
	if role, epoch := r.Authority(); role != RoleStandby || epoch != 1 || len(entries(r)) != n {
		t.Fatalf("failed promotion changed the authority to %s@%d or recorded %d entries", role, epoch, len(entries(r))-n)
	}

	p.err = nil
	if epoch, err := r.PromoteAt("a", 4); err != nil || epoch != 4 {
		t.Fatalf("PromoteAt = %d, %v", epoch, err)
	}
	last = entries(r)[len(entries(r))-1]
	if last.Transition != TransitionPromote || last.ClusterRole != RolePrimary || last.PromotionEpoch != 4 ||
		kv(last, "previous_epoch") != "1" || kv(last, "next_epoch") != "4" || kv(last, "disconnected_node") != "a" {
		t.Fatalf("promote entry %+v", last)
	}
	if want := []string{"primary@4", "primary@4"}; !slices.Equal(p.calls, want) {
		t.Fatalf("persisted %q, want %q (the failed attempt, then the promotion)", p.calls, want)
	}
	if _, err := r.PromoteAt("a", 5); err == nil || err.Error() != "promote: local node is primary" {
		t.Fatalf("second promotion: %v", err)
	}
}
