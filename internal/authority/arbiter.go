package authority

import (
	"context"
	"fmt"
)

// Arbiter decides whether a node may become primary after losing its
// primary, and at which epoch. Grant may block (a backend asks its store)
// until ctx is done; it may run concurrently with itself. It returns the
// epoch to promote at, above ev.Seen, or an error: a *Refusal when the rule
// says no, any other error when the arbiter could not decide.
type Arbiter interface {
	Grant(ctx context.Context, ev Evidence) (uint64, error)
	// Kind names the arbiter as status reports it (safety_mode).
	Kind() string
}

// Evidence is what the engine knows when it asks to promote.
type Evidence struct {
	Self           string
	Lost           string // the primary whose session was lost
	Seen           uint64 // the local epoch
	PeersConnected int    // peers still linked
	ProbeFailed    bool   // the lost primary did not answer a probe
	Quarantined    bool   // the node's own authority is in doubt after a pause
}

// Refusal is a promotion the arbiter refused. Reason is the suffix of the
// automatic_promotion_rejected reason. Defer asks the engine to act on the
// loss again once its quarantine ends.
type Refusal struct {
	Reason string
	Defer  bool
}

func (r *Refusal) Error() string { return fmt.Sprintf("promotion refused: %s", r.Reason) }

// Reasons of the Peer arbiter's refusals.
const (
	RefusedPeersRemaining = "peers_remaining"
	RefusedPeerReachable  = "peer_reachable"
	RefusedUnconfirmed    = "authority_unconfirmed_after_pause"
)

// KindPeer is the Kind of Peer.
const KindPeer = "peer"

// Peer is the two-node rule, the default arbiter: a standby may promote when
// no peer is connected, its lost primary failed the probe and it is not
// quarantined. It grants the epoch after the local one. It never blocks and
// keeps no state; the zero Peer is ready to use.
type Peer struct{}

// Grant applies the two-node rule to ev.
func (Peer) Grant(_ context.Context, ev Evidence) (uint64, error) {
	switch {
	case ev.PeersConnected > 0:
		return 0, &Refusal{Reason: RefusedPeersRemaining}
	case !ev.ProbeFailed:
		return 0, &Refusal{Reason: RefusedPeerReachable}
	case ev.Quarantined:
		return 0, &Refusal{Reason: RefusedUnconfirmed, Defer: true}
	}
	return ev.Seen + 1, nil
}

// Kind returns KindPeer.
func (Peer) Kind() string { return KindPeer }
