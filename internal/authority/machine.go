package authority

import (
	"errors"
	"fmt"
	"time"
)

// Machine is a node's authority as one state machine: its role and epoch,
// its fence generation, its quarantine after a pause, and a primary loss
// whose handling waits for the quarantine to end. Every promotion, fencing
// and quarantine of a node is a Step of its Machine.
//
// Machine is a pure value: Step takes an event and returns the next Machine
// and the effects the driver must carry out; it owns no goroutine, clock,
// randomness or I/O. Times are node-monotonic durations and nonces are
// chosen by the driver. A Machine is not safe for concurrent use; its driver
// serialises Steps under one lock and, when Effects.Persist is set, saves
// that state durably before adopting the next Machine (a change that could
// not be saved never happened).
type Machine struct {
	self        string
	state       State
	fenceGen    uint64
	quarantined bool
	quarSince   time.Duration // when the quarantine began
	nonce       uint64        // the ping nonce whose answer releases the quarantine
	deferred    string        // a lost primary whose loss waits for the quarantine to end
	handover    string        // the standby this primary is handing its role to (planned switchover), or ""
}

// NewMachine returns the authority of node self starting at s, not
// quarantined, at fence generation 0.
func NewMachine(self string, s State) Machine { return Machine{self: self, state: s} }

// State is the role and epoch.
func (m Machine) State() State { return m.state }

// FenceGen changes every time another node's authority lowered this one.
// Work dispatched under one generation must not complete under another.
func (m Machine) FenceGen() uint64 { return m.fenceGen }

// Quarantined reports whether the node must act on nothing (dispatch,
// complete, promote) until its authority is confirmed or fenced.
func (m Machine) Quarantined() bool { return m.quarantined }

// QuarantinedSince is when the current quarantine began; zero when not
// quarantined.
func (m Machine) QuarantinedSince() time.Duration { return m.quarSince }

// Deferred is the lost primary whose loss waits for the quarantine to end,
// or "".
func (m Machine) Deferred() string { return m.deferred }

// HandingOver is the standby this primary is handing its role to in a
// planned switchover, or "".
func (m Machine) HandingOver() string { return m.handover }

// Event is something the driver observed: one of Observed, Paused,
// NonceConfirmed, Resynced, Alone, Promote, DeferLoss, HandOver, TakeOver,
// StepDown, EndHandOver and LeaseWon.
type Event interface{ event() }

// Observed is a peer's authority, as carried by any message from it.
type Observed struct {
	Peer  string
	Role  string
	Epoch uint64
}

// Paused reports how long the node's pause detector went without running.
// Nonce is the fresh ping nonce to use if the node is quarantined.
type Paused struct {
	Now       time.Duration
	Gap       time.Duration
	Threshold time.Duration // a gap longer than this is a pause
	PeerSeen  bool          // some peer was ever linked: it may have declared this node lost
	Nonce     uint64
}

// NonceConfirmed is a peer's answer to the ping carrying Nonce.
type NonceConfirmed struct {
	Peer  string
	Nonce uint64
}

// Resynced is a peer's full snapshot, applied on a session that started at
// SessionStart.
type Resynced struct {
	Peer         string
	SessionStart time.Duration
}

// Alone is a check, at Now, of a quarantine that no peer can settle: Peers
// is the number of linked peers, Wait how long to wait for one.
type Alone struct {
	Now   time.Duration
	Wait  time.Duration
	Peers int
}

// Promote is a promotion granted by the arbiter at Epoch after the loss of
// the primary Lost.
type Promote struct {
	Lost  string
	Epoch uint64
}

// DeferLoss is a primary loss the arbiter refused to act on because the
// node is quarantined: it is acted on when the quarantine ends.
type DeferLoss struct{ Lost string }

// HandOver starts a planned switchover on a primary: the role goes to the
// standby To. From now on To at a higher epoch as primary steps this node
// down (StepDown) instead of fencing it: its running work is not superseded.
type HandOver struct{ To string }

// TakeOver promotes a standby in a planned switchover: From, the primary,
// handed it the role at Epoch (the lease's epoch with a lease arbiter).
type TakeOver struct {
	From  string
	Epoch uint64
}

// StepDown makes a primary handing over to To a standby at Epoch, To's
// epoch as primary. Unlike a fencing it keeps the fence generation: the work
// this node dispatched is not superseded, it completes here as before.
type StepDown struct {
	To    string
	Epoch uint64
}

// EndHandOver ends a hand-over that did not happen (the standby refused or
// could not be reached); a node that already stepped down is unchanged.
type EndHandOver struct{}

// LeaseWon is a lease won at Epoch by this node while it is primary (at
// start, or after the store was lost). The lease's epoch is the fencing
// token of the primary role, so a primary adopts it: it acts under one
// epoch, the one it holds the lease at.
type LeaseWon struct{ Epoch uint64 }

func (Observed) event()       {}
func (HandOver) event()       {}
func (TakeOver) event()       {}
func (StepDown) event()       {}
func (EndHandOver) event()    {}
func (Paused) event()         {}
func (NonceConfirmed) event() {}
func (Resynced) event()       {}
func (Alone) event()          {}
func (Promote) event()        {}
func (DeferLoss) event()      {}
func (LeaseWon) event()       {}

// ReasonSwitchover is the Change.Reason of a planned hand-over of the
// primary role (TakeOver, StepDown).
const ReasonSwitchover = "switchover"

// Change is a change of role or epoch.
type Change struct {
	Prev, Next State
	Peer       string // fenced_by, or the lost primary of a promotion
	Reason     string // of a fencing: higher_epoch_observed or primary_tie; "switchover" for a hand-over
}

// Effects is what a Step asks of its driver. The zero Effects asks nothing.
type Effects struct {
	// Persist is the state to save durably before the next Machine is
	// adopted (set with Fenced, Promoted and Adopted).
	Persist *State
	// Fenced: a peer's authority lowered this node's; FenceGen was raised.
	Fenced *Change
	// Promoted: this standby became primary (Reason "switchover" when it
	// was handed the role, Peer the primary that handed it).
	Promoted *Change
	// SteppedDown: this primary handed its role to Peer and is a standby
	// at Peer's epoch; FenceGen was kept.
	SteppedDown *Change
	// Adopted: this primary raised its epoch to the lease epoch it won.
	Adopted *Change
	// Quarantined: the node entered quarantine after a pause of Gap; the
	// driver asks its peers to confirm with a ping carrying Nonce.
	Quarantined *Quarantine
	// Released names what ended the quarantine ("fenced",
	// "peer_confirmed:<peer>", "resynced:<peer>", "no_peer_reachable").
	Released string
	// Retry is a deferred primary loss the driver must act on now.
	Retry string
	// Deferred: the loss was stored until the quarantine ends.
	Deferred bool
	// Err is a refused Promote.
	Err error
}

// Quarantine describes a quarantine that began.
type Quarantine struct {
	Gap   time.Duration
	Nonce uint64
}

// FencedBy reports whether a node self holding local must step down for
// peer's authority: a higher epoch, or two primaries at one epoch, where
// the name that sorts first stays primary.
func FencedBy(self string, local State, peer, peerRole string, peerEpoch uint64) bool {
	return peerEpoch > local.Epoch ||
		(peerEpoch == local.Epoch && peerRole == RolePrimary && local.Role == RolePrimary && self > peer)
}

// Step applies ev and returns the next Machine and the effects to carry out.
// m itself is unchanged.
func (m Machine) Step(ev Event) (Machine, Effects) {
	var eff Effects
	switch ev := ev.(type) {
	case Observed:
		if !FencedBy(m.self, m.state, ev.Peer, ev.Role, ev.Epoch) {
			return m, eff
		}
		if m.handover != "" && ev.Peer == m.handover && ev.Role == RolePrimary && ev.Epoch > m.state.Epoch {
			// The standby took the role over before its answer arrived.
			return m.Step(StepDown{To: ev.Peer, Epoch: ev.Epoch})
		}
		c := Change{Prev: m.state, Next: State{Role: RoleStandby, Epoch: ev.Epoch}, Peer: ev.Peer, Reason: "higher_epoch_observed"}
		if ev.Epoch == m.state.Epoch {
			c.Reason = "primary_tie"
		}
		m.state = c.Next
		m.fenceGen++
		m.handover = ""
		eff.Persist, eff.Fenced = &c.Next, &c
		m = m.release("fenced", &eff)
	case Paused:
		if m.quarantined || !ev.PeerSeen || ev.Gap <= ev.Threshold {
			return m, eff
		}
		m.quarantined, m.quarSince, m.nonce = true, ev.Now, ev.Nonce
		eff.Quarantined = &Quarantine{Gap: ev.Gap, Nonce: ev.Nonce}
	case NonceConfirmed:
		if m.quarantined && ev.Nonce == m.nonce {
			m = m.release("peer_confirmed:"+ev.Peer, &eff)
		}
	case Resynced:
		if m.quarantined && ev.SessionStart > m.quarSince {
			m = m.release("resynced:"+ev.Peer, &eff)
		}
	case Alone:
		if m.quarantined && ev.Peers == 0 && ev.Now-m.quarSince > ev.Wait {
			m = m.release("no_peer_reachable", &eff)
		}
	case Promote:
		switch {
		case m.state.Role != RoleStandby:
			eff.Err = fmt.Errorf("promote: local node is %s", m.state.Role)
		case m.quarantined:
			// Quarantined since the arbiter was asked: the loss waits.
			m.deferred = ev.Lost
			eff.Deferred = true
			eff.Err = errors.New("promote: authority unconfirmed after a pause")
		case ev.Epoch <= m.state.Epoch:
			eff.Err = fmt.Errorf("promote: granted epoch %d is not above the local epoch %d", ev.Epoch, m.state.Epoch)
		default:
			c := Change{Prev: m.state, Next: State{Role: RolePrimary, Epoch: ev.Epoch}, Peer: ev.Lost}
			m.state = c.Next
			m.deferred = ""
			eff.Persist, eff.Promoted = &c.Next, &c
		}
	case HandOver:
		switch {
		case m.state.Role != RolePrimary:
			eff.Err = fmt.Errorf("hand over: local node is %s", m.state.Role)
		case m.quarantined:
			eff.Err = errors.New("hand over: authority unconfirmed after a pause")
		case ev.To == "" || ev.To == m.self:
			eff.Err = fmt.Errorf("hand over: invalid standby %q", ev.To)
		default:
			m.handover = ev.To
		}
	case TakeOver:
		switch {
		case m.state.Role != RoleStandby:
			eff.Err = fmt.Errorf("take over: local node is %s", m.state.Role)
		case m.quarantined:
			eff.Err = errors.New("take over: authority unconfirmed after a pause")
		case ev.Epoch <= m.state.Epoch:
			eff.Err = fmt.Errorf("take over: epoch %d is not above the local epoch %d", ev.Epoch, m.state.Epoch)
		default:
			c := Change{Prev: m.state, Next: State{Role: RolePrimary, Epoch: ev.Epoch}, Peer: ev.From, Reason: ReasonSwitchover}
			m.state = c.Next
			m.deferred = ""
			eff.Persist, eff.Promoted = &c.Next, &c
		}
	case StepDown:
		switch {
		case m.handover == "" || ev.To != m.handover:
			eff.Err = fmt.Errorf("step down: not handing over to %q", ev.To)
		case m.state.Role != RolePrimary:
			eff.Err = fmt.Errorf("step down: local node is %s", m.state.Role)
		case ev.Epoch <= m.state.Epoch:
			eff.Err = fmt.Errorf("step down: epoch %d is not above the local epoch %d", ev.Epoch, m.state.Epoch)
		default:
			c := Change{Prev: m.state, Next: State{Role: RoleStandby, Epoch: ev.Epoch}, Peer: ev.To, Reason: ReasonSwitchover}
			m.state = c.Next
			m.handover = ""
			eff.Persist, eff.SteppedDown = &c.Next, &c
		}
	case EndHandOver:
		m.handover = ""
	case LeaseWon:
		switch {
		case m.state.Role != RolePrimary:
			eff.Err = fmt.Errorf("lease won: local node is %s", m.state.Role)
		case ev.Epoch < m.state.Epoch:
			eff.Err = fmt.Errorf("lease won: lease epoch %d is below the local epoch %d", ev.Epoch, m.state.Epoch)
		case ev.Epoch > m.state.Epoch:
			c := Change{Prev: m.state, Next: State{Role: RolePrimary, Epoch: ev.Epoch}, Reason: "lease_acquired"}
			m.state = c.Next
			eff.Persist, eff.Adopted = &c.Next, &c
		}
	case DeferLoss:
		if m.quarantined {
			m.deferred = ev.Lost
			eff.Deferred = true
		} else {
			eff.Retry = ev.Lost // released while the arbiter was asked
		}
	default:
		panic(fmt.Sprintf("authority: unknown event %T", ev))
	}
	return m, eff
}

// release ends a quarantine, recording what ended it in eff and handing a
// deferred loss back to the driver.
func (m Machine) release(how string, eff *Effects) Machine {
	if !m.quarantined {
		return m
	}
	m.quarantined, m.quarSince, m.nonce = false, 0, 0
	eff.Released = how
	if m.deferred != "" {
		eff.Retry, m.deferred = m.deferred, ""
	}
	return m
}
