package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"meshgo.dev/mesh/internal/arbiter"
	"meshgo.dev/mesh/internal/arbiter/postgres"
	"meshgo.dev/mesh/internal/authority"
	"meshgo.dev/mesh/internal/continuity"
)

// A lease arbiter (MESH_ARBITER=postgres://... or etcd://...) drives the
// primary role:
//
//   - A standby promotes only by winning the lease (arbiter.Acquire) at an
//     epoch above every epoch it knows of; the won epoch is its promotion
//     epoch. While another node holds an unexpired lease it waits, reporting
//     automatic_promotion_rejected with lease_held_by:<node>, until the lease
//     expires or the lost primary is back.
//   - A primary acquires the lease (at start, or when it has none) and keeps
//     renewing it (arbiter.Keep). It acts as primary — serves clustered
//     routes, dispatches and completes work — only while its lease is valid
//     on its own monotonic clock (Lease.Valid, checked by confirmed before
//     every such action). Past its deadline it stops: routes answer 503
//     arbiter_unavailable, work waits. A renewal that succeeds again resumes
//     it; a lease lost to a higher epoch steps it down (fenced), as the
//     higher epoch of a peer does.
//
// The clock arithmetic that makes the two never overlap is in the package
// doc of internal/arbiter.

// Diagnostics of the lease.
const (
	transitionLeaseAcquired      = "arbiter_lease_acquired"
	transitionLeaseLost          = "arbiter_lease_lost"
	transitionArbiterUnavailable = "arbiter_unavailable"
)

// Reasons of a lease arbiter's refusals of a promotion.
const (
	refusedLeaseHeldBy        = "lease_held_by:" // + the holder's name
	refusedArbiterUnavailable = string(continuity.ReasonArbiterUnavailable)
)

// ArbiterDSN is the MESH_ARBITER value a node is configured with: "" or
// "peer" for the two-node rule, postgres://... or postgresql://... for a
// lease in PostgreSQL, etcd://[user:password@]host:port[,host:port] for an
// etcd lease. It
// may hold credentials, so it prints, logs and
// marshals as its redacted form (scheme and hosts only).
type ArbiterDSN string

// String returns the redacted form.
func (d ArbiterDSN) String() string { return arbiter.DSN(d).String() }

// GoString returns the redacted form, quoted.
func (d ArbiterDSN) GoString() string { return arbiter.DSN(d).GoString() }

// LogValue returns the redacted form.
func (d ArbiterDSN) LogValue() slog.Value { return arbiter.DSN(d).LogValue() }

// MarshalText returns the redacted form, so JSON never sees the secret.
func (d ArbiterDSN) MarshalText() ([]byte, error) { return arbiter.DSN(d).MarshalText() }

// checkArbiterSpec parses a configured arbiter: peer, postgres or etcd.
// Errors never show credentials.
func checkArbiterSpec(v string) (arbiter.Spec, error) {
	return arbiter.ParseSpec(v)
}

// withLeaseArbiter makes the node decide promotions and gate its primary
// role with the lease store a, under timing t, instead of what
// Config.Arbiter names. Every node of one cluster must share one store (an
// *arbiter.Memory in tests).
func withLeaseArbiter(a arbiter.Arbiter, t arbiter.Timing) Option {
	return func(n *Node) { n.lease = newLeaseKeeper(n, a, t, string(arbiter.KindPostgres), nil) }
}

// leaseRow names the cluster's lease row: a digest of the cookie, which
// both nodes of a cluster share and no other cluster does, so neither the
// cookie nor a node name is stored.
func leaseRow(cookie Cookie) string {
	sum := sha256.Sum256([]byte("mesh arbiter lease row\x00" + string(cookie)))
	return "mesh-" + hex.EncodeToString(sum[:12])
}

// openLeaseArbiter opens the store a cluster node's Config names, or
// returns nil for the peer rule. Its errors are bootstrap errors that never
// show the connection string's credentials.
func (n *Node) openLeaseArbiter(cfg Config) error {
	if n.lease != nil {
		return nil // given by an option
	}
	spec, err := checkArbiterSpec(string(cfg.Arbiter))
	if err != nil || spec.Kind == arbiter.KindPeer {
		return err
	}
	t := arbiter.DefaultTiming()
	ctx, cancel := context.WithTimeout(context.Background(), 4*t.TTL)
	defer cancel()
	var (
		a       arbiter.Arbiter
		closeFn func()
	)
	switch spec.Kind {
	case arbiter.KindPostgres:
		pa, perr := postgres.Open(ctx, postgres.Config{URL: spec.DSN, Cluster: leaseRow(cfg.Cookie), Timing: t})
		a, err = pa, perr
		if perr == nil {
			closeFn = pa.Close
		}
	case arbiter.KindEtcd:
		a, closeFn, err = openEtcd(ctx, spec.DSN, leaseRow(cfg.Cookie), t)
	default:
		return fmt.Errorf("arbiter %s: unknown kind %q", spec, spec.Kind)
	}
	if err != nil {
		return fmt.Errorf("arbiter %s: %s", spec, arbiter.Scrub(err.Error(), string(cfg.Arbiter)))
	}
	n.lease = newLeaseKeeper(n, a, t, string(spec.Kind), closeFn)
	return nil
}

// leaseKeeper holds this node's view of the lease. It is the node's
// authority.Arbiter when a lease store is configured.
type leaseKeeper struct {
	n      *Node
	store  arbiter.Arbiter
	timing arbiter.Timing
	kind   string
	close  func() // closes the store's connections; nil when there are none

	// deadline is the held lease's deadline in node-monotonic nanoseconds
	// (Node.mono); 0 when no lease is held. Read on every action.
	deadline atomic.Int64

	grantMu sync.Mutex // one Grant or elect at a time: two promotions at once must not both acquire

	// Used by run only (elect): when this standby first saw no primary
	// among its linked peers (node-monotonic; 0: not now), and the last
	// refusal it reported.
	leaderless   int64
	electRefusal string

	mu          sync.Mutex
	lease       arbiter.Lease // the lease this node holds, as it knows it; zero when none
	unavailable bool          // the last request to the store failed
	refusal     string        // the last promotion refusal's reason

	// released is set while a switchover has given the lease up: the node
	// neither renews nor acquires it until the hand-over ends (release).
	released atomic.Bool
}

// release stops this primary acting under its lease and gives the lease up
// in the store, so the standby of a switchover can acquire it at once. The
// node acts on nothing from here (mayAct) until it is a standby linked to
// the new primary. An error means the store could not be told: the lease
// then expires by itself.
func (k *leaseKeeper) release(ctx context.Context) error {
	k.released.Store(true)
	l := k.held()
	k.setLease(arbiter.Lease{})
	k.n.authorityChanged()
	if l.Epoch == 0 {
		return nil
	}
	octx, cancel := k.op(ctx)
	defer cancel()
	if err := k.store.Release(octx, l); err != nil && !errors.Is(err, arbiter.ErrLeaseLost) {
		k.storeFailed(err)
		return err
	}
	return nil
}

// unrelease ends a switchover's hold on the lease: a node still primary
// (the hand-over was aborted) acquires it again.
func (k *leaseKeeper) unrelease() {
	k.released.Store(false)
	k.n.authorityChanged()
}

var _ authority.Arbiter = (*leaseKeeper)(nil)

func newLeaseKeeper(n *Node, a arbiter.Arbiter, t arbiter.Timing, kind string, closeFn func()) *leaseKeeper {
	return &leaseKeeper{n: n, store: a, timing: t, kind: kind, close: closeFn}
}

// Kind returns the safety mode (postgres or etcd).
func (k *leaseKeeper) Kind() string { return k.kind }

// mayAct reports whether the node may act on its role now: a primary only
// while its lease is valid; a standby only while it is linked to a primary
// (it acts under that primary's lease; cut off from it, it may not act as
// one).
func (k *leaseKeeper) mayAct() bool {
	if role, _ := k.n.reg.Authority(); role != RolePrimary {
		return k.n.primaryLinked()
	}
	d := k.deadline.Load()
	return d != 0 && k.n.mono() < d
}

// primaryLinked reports whether a peer that says it is primary is linked.
func (n *Node) primaryLinked() bool {
	for _, s := range n.sessionList() {
		if s.isClosed() {
			continue
		}
		if a, _, ok := n.peerAuthority(s.peer); ok && a.Role == RolePrimary {
			return true
		}
	}
	return false
}

// setLease records l as the held lease (the zero Lease: none).
func (k *leaseKeeper) setLease(l arbiter.Lease) {
	k.mu.Lock()
	k.lease = l
	k.mu.Unlock()
	if l.Epoch == 0 {
		k.deadline.Store(0)
		return
	}
	k.deadline.Store(max(1, int64(l.Deadline.Sub(k.n.start))))
}

// valid reports whether the held lease is valid now.
func (k *leaseKeeper) valid() bool {
	d := k.deadline.Load()
	return d != 0 && k.n.mono() < d
}

func (k *leaseKeeper) held() arbiter.Lease {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lease
}

// storeFailed records a failed request to the store, reporting the first
// of a run of failures as arbiter_unavailable. It returns whether this was
// the first.
func (k *leaseKeeper) storeFailed(err error) {
	k.mu.Lock()
	first := !k.unavailable
	k.unavailable = true
	k.mu.Unlock()
	if first {
		k.emit(transitionArbiterUnavailable, refusedArbiterUnavailable, continuity.KV{Key: "error", Value: err.Error()})
	}
}

// storeAnswered records that the store answered; it reports whether it had
// been unavailable.
func (k *leaseKeeper) storeAnswered() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	was := k.unavailable
	k.unavailable = false
	return was
}

func (k *leaseKeeper) emit(transition, reason string, meta ...continuity.KV) {
	k.n.reg.Emit(continuity.Entry{Transition: transition, Reason: reason, Metadata: meta})
}

func (k *leaseKeeper) leaseMeta(l arbiter.Lease) []continuity.KV {
	return []continuity.KV{{Key: "holder", Value: l.Holder}, {Key: "lease_epoch", Value: strconv.FormatUint(l.Epoch, 10)}}
}

// refusalReason is the promotion refusal reason for an Acquire's error.
func refusalReason(err error) string {
	var c *arbiter.ConflictError
	if errors.As(err, &c) && c.Holder != "" && errors.Is(err, arbiter.ErrLeaseHeld) {
		return refusedLeaseHeldBy + c.Holder
	}
	return refusedArbiterUnavailable
}

func (k *leaseKeeper) refused(reason string) {
	k.mu.Lock()
	k.refusal = reason
	k.mu.Unlock()
}

// op bounds one request to the store.
func (k *leaseKeeper) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, k.timing.Renew)
}

// acquire tries once to win the lease above every epoch this node knows of:
// its own and the store's. On success the lease is held and reported.
func (k *leaseKeeper) acquire(ctx context.Context, localEpoch uint64) (arbiter.Lease, error) {
	seen := localEpoch
	for range 3 { // a stale epoch is learned and tried again; more is a race lost
		octx, cancel := k.op(ctx)
		st, err := k.store.Observe(octx)
		cancel()
		if err != nil {
			k.storeFailed(err)
			return arbiter.Lease{}, err
		}
		seen = max(seen, st.Epoch)
		actx, cancel := k.op(ctx)
		l, err := k.store.Acquire(actx, k.n.self, seen)
		cancel()
		var c *arbiter.ConflictError
		switch {
		case err == nil:
			k.storeAnswered()
			if err := k.adopt(l); err != nil {
				// The lease is left to expire; the next try wins it again.
				return arbiter.Lease{}, err
			}
			k.setLease(l)
			k.emit(transitionLeaseAcquired, "", k.leaseMeta(l)...)
			k.n.authorityChanged()
			return l, nil
		case errors.As(err, &c) && errors.Is(err, arbiter.ErrStaleEpoch):
			seen = max(seen, c.Epoch)
			continue
		case errors.Is(err, arbiter.ErrUnavailable):
			k.storeFailed(err)
			return arbiter.Lease{}, err
		default:
			k.storeAnswered()
			return arbiter.Lease{}, err
		}
	}
	return arbiter.Lease{}, &arbiter.ConflictError{Reason: arbiter.ErrStaleEpoch, Seen: seen}
}

// adopt makes a primary that won l act under l's epoch: the lease's epoch
// is the fencing token of the primary role, so the epoch the node promotes,
// records and fences under is the one it holds the lease at. It is called
// before the lease is set, so the node never acts under the lease at an
// older epoch. A standby adopts nothing here: it promotes at the won epoch
// (Grant, elect).
func (k *leaseKeeper) adopt(l arbiter.Lease) error {
	if role, _ := k.n.reg.Authority(); role != RolePrimary {
		return nil
	}
	eff, err := k.n.stepAuthority(authority.LeaseWon{Epoch: l.Epoch}, nil)
	if err != nil {
		return err
	}
	if eff.Err != nil {
		// Fenced since the role was read: keep leaves the lease to expire.
		k.n.log.Info("[mesh-rt arbiter] lease epoch not adopted", "error", eff.Err)
	}
	return nil
}

// Grant decides a promotion after the loss of ev.Lost by winning the lease.
// Like the peer rule it refuses while another peer is connected, and defers
// while this node's own authority is in doubt after a pause. Otherwise it
// keeps trying until it wins, the lost primary (or any peer) is back, the
// node stops being a standby, or ctx is done: a lease held by the lost
// primary expires at most one TTL after its last renewal. Each new reason
// for waiting is reported as automatic_promotion_rejected.
func (k *leaseKeeper) Grant(ctx context.Context, ev authority.Evidence) (uint64, error) {
	switch {
	case ev.PeersConnected > 0:
		return 0, &authority.Refusal{Reason: authority.RefusedPeersRemaining}
	case ev.Quarantined:
		return 0, &authority.Refusal{Reason: authority.RefusedUnconfirmed, Defer: true}
	}
	k.grantMu.Lock()
	defer k.grantMu.Unlock()
	reported := ""
	for {
		// Every Acquire raises the epoch, even the holder's own: only a
		// standby may try, or a second loss handled after a promotion would
		// move the lease past the epoch the node promoted at.
		role, epoch := k.n.reg.Authority()
		if role != RoleStandby {
			return 0, fmt.Errorf("promote: local node is %s", role)
		}
		l, err := k.acquire(ctx, max(ev.Seen, epoch))
		if err == nil {
			return l.Epoch, nil
		}
		reason := refusalReason(err)
		k.refused(reason)
		wait := k.timing.Renew
		var c *arbiter.ConflictError
		if errors.As(err, &c) && c.Remaining > 0 {
			wait = min(wait, c.Remaining+10*time.Millisecond)
		}
		if role, _ := k.n.reg.Authority(); role != RoleStandby || len(k.n.Peers()) > 0 || k.n.session(ev.Lost) != nil || k.n.stopped.Load() {
			return 0, &authority.Refusal{Reason: reason}
		}
		if reason != reported {
			reported = reason
			k.n.reg.Emit(continuity.Entry{Transition: continuity.TransitionAutomaticPromotionRejected,
				Reason:   "automatic_promotion_rejected:" + reason,
				Metadata: []continuity.KV{{Key: "disconnected_node", Value: ev.Lost}, {Key: "retrying", Value: "true"}}})
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return 0, &authority.Refusal{Reason: reason}
		}
	}
}

// run keeps the lease while the node is primary: it acquires one when it
// holds none and renews it with arbiter.Keep. It returns when the node
// stops.
func (k *leaseKeeper) run() {
	ctx := k.n.ctx
	for ctx.Err() == nil {
		ch := k.n.authWait()
		role, epoch := k.n.reg.Authority()
		if role != RolePrimary || k.released.Load() {
			if role == RoleStandby {
				k.elect(ctx)
			} else {
				k.leaderless = 0
			}
			select {
			case <-ch:
			case <-ctx.Done():
			case <-time.After(k.timing.Renew):
			}
			continue
		}
		k.leaderless = 0
		l := k.held()
		if l.Epoch == 0 {
			var err error
			if l, err = k.acquire(ctx, epoch); err != nil {
				k.conflict(ctx, err)
				select {
				case <-ctx.Done():
				case <-time.After(k.timing.Renew):
				}
				continue
			}
		}
		k.keep(ctx, l)
	}
}

// elect ends a pair with no primary. Promotion after a loss (Grant) needs a
// lost peer; standbys that stay connected to each other lose none — after a
// restart of both nodes within the TTL, or when a fenced primary stepped
// down for a lease that then expired — so without this nothing would ever
// promote. A standby linked to at least one peer, where every linked peer
// has told its authority, sent its records and is not primary, tries to win the lease once
// the pair has had no primary for a Renew interval; the node whose name
// sorts first (the one FencedBy keeps at a tie) tries first, the others a
// TTL later. The store decides: at most one Acquire wins, and a lease still
// held by another node (an old holder's, until it expires) is waited out.
// The winner promotes at the won epoch; the others are fenced up to it as
// for any promotion. It is called only from run.
func (k *leaseKeeper) elect(ctx context.Context) {
	n := k.n
	first, seen, ok := n.noPrimaryLinked()
	if !ok || n.stopped.Load() || n.reg.Quarantined() {
		k.leaderless = 0
		return
	}
	now := max(1, n.mono())
	if k.leaderless == 0 {
		k.leaderless = now
		return
	}
	wait := k.timing.Renew
	if first < n.self {
		wait += k.timing.TTL
	}
	if time.Duration(now-k.leaderless) < wait {
		return
	}
	k.grantMu.Lock()
	defer k.grantMu.Unlock()
	role, epoch := n.reg.Authority()
	if role != RoleStandby {
		return
	}
	reject := func(reason string) {
		k.refused(reason)
		if reason == k.electRefusal {
			return
		}
		k.electRefusal = reason
		n.reg.Emit(continuity.Entry{Transition: continuity.TransitionAutomaticPromotionRejected,
			Reason:   "automatic_promotion_rejected:" + reason,
			Metadata: []continuity.KV{{Key: "trigger", Value: reasonNoPrimary}, {Key: "retrying", Value: "true"}}})
	}
	l, err := k.acquire(ctx, max(seen, epoch))
	if err != nil {
		reject(refusalReason(err))
		return
	}
	eff, err := n.stepAuthority(authority.Promote{Epoch: l.Epoch}, nil)
	if err == nil {
		err = eff.Err
	}
	if err != nil {
		// Not promoted: the lease is left to expire.
		k.setLease(arbiter.Lease{})
		reject(err.Error())
		return
	}
	k.leaderless, k.electRefusal = 0, ""
	n.reg.Emit(continuity.Entry{Transition: continuity.TransitionAutomaticPromotion, Reason: reasonNoPrimary,
		Metadata: []continuity.KV{{Key: "previous_epoch", Value: strconv.FormatUint(epoch, 10)},
			{Key: "next_epoch", Value: strconv.FormatUint(l.Epoch, 10)}}})
	n.recoverElected()
}

// reasonNoPrimary is the reason of a promotion by elect.
const reasonNoPrimary = "no_primary_under_lease"

// noPrimaryLinked reports whether at least one peer is linked, every linked
// peer has told its authority and its first snapshot was applied here, and
// none of them is primary; with the name
// that sorts first among this node and those peers, and their highest
// epoch.
func (n *Node) noPrimaryLinked() (first string, epoch uint64, ok bool) {
	first = n.self
	for _, s := range n.sessionList() {
		if s.isClosed() {
			continue
		}
		select {
		case <-s.synced:
		default:
			return "", 0, false // its records are not all here yet
		}
		a, _, known := n.peerAuthority(s.peer)
		if !known || a.Role == RolePrimary {
			return "", 0, false
		}
		ok = true
		first, epoch = min(first, s.peer), max(epoch, a.Epoch)
	}
	return first, epoch, ok
}

// conflict handles a lease this primary could not acquire because another
// node holds it: when that node's epoch is above this one's, this node
// steps down, as for a peer at a higher epoch.
func (k *leaseKeeper) conflict(ctx context.Context, err error) {
	var c *arbiter.ConflictError
	if !errors.As(err, &c) || c.Holder == "" || c.Holder == k.n.self {
		return
	}
	k.n.observeAuthority(c.Holder, RolePrimary, c.Epoch, nil)
}

// keep renews l until the lease is lost, the node is no longer primary, or
// ctx is done.
func (k *leaseKeeper) keep(ctx context.Context, l arbiter.Lease) {
	kctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Leave when the role changes: a fenced node holds no lease.
	go func() {
		for {
			ch := k.n.authWait()
			if role, _ := k.n.reg.Authority(); role != RolePrimary {
				cancel()
				return
			}
			select {
			case <-ch:
			case <-kctx.Done():
				return
			}
		}
	}()
	if !l.Valid(time.Now()) {
		// Renew at once: a lease held while the node was a standby, or
		// kept across an outage of the store, may be renewable.
		rctx, rcancel := k.op(kctx)
		r, err := k.store.Renew(rctx, l)
		rcancel()
		k.renewed(l, r, err)
		if errors.Is(err, arbiter.ErrLeaseLost) {
			k.lost(ctx, l)
			return
		}
		if err == nil {
			l = r
		}
	}
	err := arbiter.Keep(kctx, k.store, k.timing, l, func(r arbiter.Lease, err error) { k.renewed(l, r, err) })
	switch {
	case k.released.Load():
		k.setLease(arbiter.Lease{}) // given up by a switchover
	case errors.Is(err, arbiter.ErrLeaseLost):
		k.lost(ctx, k.held())
	case ctx.Err() == nil:
		// No longer primary: the lease is left to expire.
		k.setLease(arbiter.Lease{})
	}
}

// renewed applies one renewal's outcome: r is the lease as now known.
func (k *leaseKeeper) renewed(prev, r arbiter.Lease, err error) {
	if k.released.Load() {
		return // given up by a switchover: a renewal in flight must not revive it
	}
	if err != nil {
		if !errors.Is(err, arbiter.ErrLeaseLost) {
			k.storeFailed(err)
		}
		return
	}
	wasValid := k.valid()
	k.setLease(r)
	if k.storeAnswered() || !wasValid {
		// The store is back, and the holder resumes.
		k.emit(transitionLeaseAcquired, "renewed", k.leaseMeta(r)...)
		k.n.authorityChanged()
	}
}

// lost reports the loss of l and steps down for the node that holds the
// lease now, if the store says who.
func (k *leaseKeeper) lost(ctx context.Context, l arbiter.Lease) {
	k.setLease(arbiter.Lease{})
	k.emit(transitionLeaseLost, string(continuity.ReasonFenced), k.leaseMeta(l)...)
	k.n.authorityChanged()
	octx, cancel := k.op(ctx)
	st, err := k.store.Observe(octx)
	cancel()
	if err != nil || st.Holder == "" || st.Holder == k.n.self {
		return
	}
	k.n.observeAuthority(st.Holder, RolePrimary, st.Epoch, nil)
}

// leaseView is the lease as status reports it.
type leaseView struct {
	Holder    string
	Epoch     uint64
	ExpiresIn time.Duration
}

// view reads the lease for status: this node's own when it holds a valid
// one, the store's otherwise (nil when free or the store cannot be
// reached), and the last promotion refusal.
func (k *leaseKeeper) view(ctx context.Context) (*leaseView, string) {
	k.mu.Lock()
	l, refusal := k.lease, k.refusal
	k.mu.Unlock()
	if now := time.Now(); l.Valid(now) {
		return &leaseView{Holder: l.Holder, Epoch: l.Epoch, ExpiresIn: l.Remaining(now)}, refusal
	}
	octx, cancel := k.op(ctx)
	defer cancel()
	st, err := k.store.Observe(octx)
	if err != nil || !st.Held() {
		return nil, refusal
	}
	return &leaseView{Holder: st.Holder, Epoch: st.Epoch, ExpiresIn: st.Remaining}, refusal
}

// closeStore closes the store's connections, once the node has stopped.
func (k *leaseKeeper) closeStore() {
	if k.close != nil {
		k.close()
	}
}

// closeLease closes the lease store's connections, if any.
func (n *Node) closeLease() {
	if n.lease != nil {
		n.lease.closeStore()
	}
}

// unconfirmedError is the refusal of an action the node may not take now
// (confirmed said no): arbiter_unavailable when the lease is the reason (a
// primary past its deadline, a standby linked to no primary),
// authority_unconfirmed_after_pause otherwise.
func (n *Node) unconfirmedError() error {
	if n.lease != nil && !n.lease.mayAct() && !n.reg.Quarantined() {
		return &continuity.Error{Reason: continuity.ReasonArbiterUnavailable}
	}
	return &continuity.Error{Reason: continuity.ReasonQuarantined}
}
