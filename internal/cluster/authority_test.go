package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/authority"
	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/meshtest"
)

// confirmed only reads: a gap the pause detector has not judged yet makes it
// answer no, but the quarantine (and its diagnostics entry) is the
// detector's event, checkPause. The node is built without Start, so no
// detector runs behind the test's back.
func TestConfirmedOnlyReads(t *testing.T) {
	cfg := testConfig(t, "standby", "::1", 4370, RoleStandby).withDefaults()
	n := &Node{cfg: cfg, self: cfg.NodeName.String(), log: cfg.Logger, start: time.Now(),
		authCh: make(chan struct{}), sessions: map[string]*session{}, kick: make(chan struct{}, 1), arbiter: authority.Peer{}}
	n.reg = continuity.NewRegistry(continuity.Options{Self: n.self, Role: RoleStandby, Epoch: 1})
	n.lastTick.Store(n.mono())
	n.peerSeen.Store(true)
	if !n.confirmed() {
		t.Fatal("not confirmed with no pause")
	}

	n.lastTick.Store(n.mono() - int64(2*cfg.PeerTimeout))
	for range 3 {
		if n.confirmed() {
			t.Fatal("confirmed after an unjudged pause")
		}
	}
	if n.reg.Quarantined() || hasTransition(n, continuity.TransitionQuarantined, "") {
		t.Fatal("confirmed() quarantined the node")
	}

	woken := n.authWait()
	if !n.checkPause() || !n.reg.Quarantined() || !hasTransition(n, continuity.TransitionQuarantined, "") {
		t.Fatal("the detector's event did not quarantine after the pause")
	}
	select {
	case <-woken:
	default:
		t.Fatal("quarantine did not wake the authority waiters")
	}
	if n.confirmed() {
		t.Fatal("confirmed while quarantined")
	}

	// A snapshot on a session that started before the quarantine settles
	// nothing; one on a newer session releases it.
	n.resynced("primary@127.0.0.1:4370", 0)
	if !n.reg.Quarantined() {
		t.Fatal("released by a session older than the pause")
	}
	n.resynced("primary@127.0.0.1:4370", n.mono())
	if n.reg.Quarantined() || !n.confirmed() {
		t.Fatal("not released by a snapshot on a newer session")
	}
}

// scriptedArbiter records what it is asked and answers as told.
type scriptedArbiter struct {
	mu       sync.Mutex
	evidence []authority.Evidence
	refuse   string // refusal reason; "" grants epoch
	epoch    uint64
}

func (a *scriptedArbiter) Grant(_ context.Context, ev authority.Evidence) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evidence = append(a.evidence, ev)
	if a.refuse != "" {
		return 0, &authority.Refusal{Reason: a.refuse}
	}
	return a.epoch, nil
}

func (a *scriptedArbiter) Kind() string { return "scripted" }

func (a *scriptedArbiter) asked() []authority.Evidence {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]authority.Evidence(nil), a.evidence...)
}

// Promotion goes through the arbiter: a refusal keeps the standby a
// standby and is recorded with the arbiter's reason; a grant promotes at
// the epoch the arbiter chose, not at the local epoch + 1.
func TestPromotionAsksTheArbiter(t *testing.T) {
	for _, tt := range []struct {
		name string
		arb  *scriptedArbiter
	}{
		{"refused", &scriptedArbiter{refuse: "lease_held_by:elsewhere"}},
		{"granted", &scriptedArbiter{epoch: 5}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fn := meshtest.New()
			t.Cleanup(fn.Close)
			port := freePort(t)
			pcfg := testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
			scfg := testConfig(t, "standby", "::1", port, RoleStandby)
			p := startNode(t, pcfg, WithNetwork(fn.Node(pcfg.NodeName.String())))
			s := startNode(t, scfg, WithNetwork(fn.Node(scfg.NodeName.String())), func(n *Node) { n.arbiter = tt.arb })
			eventually(t, 10*time.Second, func() error {
				if len(p.Peers()) != 1 || len(s.Peers()) != 1 {
					return fmt.Errorf("peers %v / %v", p.Peers(), s.Peers())
				}
				return nil
			})
			if got := (operatorSource{s}).Status().SafetyMode; got != "scripted" {
				t.Fatalf("status safety_mode %q, want the arbiter's kind", got)
			}
			p.crash()

			want := authority.Evidence{Self: s.Name(), Lost: p.Name(), Seen: 0, ProbeFailed: true}
			eventually(t, 10*time.Second, func() error {
				if len(tt.arb.asked()) == 0 {
					return fmt.Errorf("arbiter not asked yet")
				}
				return nil
			})
			got := tt.arb.asked()[0]
			if got.Quarantined && hasTransition(s, continuity.TransitionQuarantined, "") {
				// A loaded machine stalled the standby long enough for its
				// pause detector to quarantine it: the evidence says so.
				want.Quarantined = true
			}
			if got != want {
				t.Fatalf("arbiter asked with %+v, want %+v", got, want)
			}
			if tt.arb.refuse != "" {
				eventually(t, 10*time.Second, func() error {
					for _, e := range s.Diagnostics().Entries {
						if e.Transition == continuity.TransitionAutomaticPromotionRejected &&
							e.Reason == "automatic_promotion_rejected:"+tt.arb.refuse {
							return nil
						}
					}
					return fmt.Errorf("no rejection with the arbiter's reason")
				})
				if r, e := s.Authority(); r != RoleStandby || e != 0 {
					t.Fatalf("refused standby is %s at %d", r, e)
				}
				if hasTransition(s, continuity.TransitionPromote, "") {
					t.Fatal("refused standby recorded a promotion")
				}
				return
			}
			eventually(t, 10*time.Second, func() error {
				if r, e := s.Authority(); r != RolePrimary || e != 5 {
					return fmt.Errorf("standby is %s at %d, want primary at the granted epoch 5", r, e)
				}
				return nil
			})
			st, ok, err := authority.Load(authority.Path(scfg.StateDir))
			if err != nil || !ok || st != (authority.State{Role: authority.RolePrimary, Epoch: 5}) {
				t.Fatalf("persisted authority %+v %v %v, want primary at 5", st, ok, err)
			}
		})
	}
}
