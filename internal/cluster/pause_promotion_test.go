package cluster

import (
	"fmt"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/meshtest"
)

// A standby that stalls just as its primary is cut off cannot promote at the
// loss (its own authority is in doubt), and must promote once its quarantine
// is released with the primary still unreachable: otherwise the pair is left
// with no primary at all. The stall is replayed by moving the standby's last
// pause-detector tick into the past right after the cut.
func TestStandbyPromotesAfterPauseDeferredItsPromotion(t *testing.T) {
	fn := meshtest.New()
	t.Cleanup(fn.Close)
	port := freePort(t)
	pcfg := testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
	scfg := testConfig(t, "standby", "::1", port, RoleStandby)
	p := startNode(t, pcfg, WithNetwork(fn.Node(pcfg.NodeName.String())))
	s := startNode(t, scfg, WithNetwork(fn.Node(scfg.NodeName.String())))
	eventually(t, 10*time.Second, func() error {
		if len(p.Peers()) != 1 || len(s.Peers()) != 1 {
			return fmt.Errorf("peers %v / %v", p.Peers(), s.Peers())
		}
		return nil
	})

	fn.Partition(p.Name(), s.Name())
	s.lastTick.Store(s.mono() - int64(2*scfg.PeerTimeout))
	// The quarantine starts at the standby's next tick, well before the
	// peer timeout declares the primary lost.
	eventually(t, 10*time.Second, func() error {
		if !hasTransition(s, continuity.TransitionAutomaticPromotionRejected, "") {
			return fmt.Errorf("standby has not yet refused to promote while quarantined")
		}
		return nil
	})
	// Released after 2 discovery intervals and 2 peer timeouts with no peer;
	// the automatic_promotion entry follows the authority change, so both
	// are polled together.
	eventually(t, 10*time.Second, func() error {
		if r, e := s.Authority(); r != RolePrimary || e != 1 {
			return fmt.Errorf("standby authority %s/%d", r, e)
		}
		var rejected, released, promoted bool
		for _, e := range s.Diagnostics().Entries {
			switch e.Transition {
			case continuity.TransitionAutomaticPromotionRejected:
				rejected = e.Reason == "automatic_promotion_rejected:authority_unconfirmed_after_pause"
			case continuity.TransitionQuarantineReleased:
				released = rejected
			case continuity.TransitionAutomaticPromotion:
				promoted = released && e.Reason == "peer_lost:"+p.Name()
			}
		}
		if !promoted {
			return fmt.Errorf("want automatic_promotion_rejected (paused), then authority_confirmed, then automatic_promotion; diagnostics %+v", s.Diagnostics().Entries)
		}
		return nil
	})
}
