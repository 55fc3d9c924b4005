package cluster

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"meshgo.dev/mesh/internal/authority"
	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/internal/logstore"
	"meshgo.dev/mesh/internal/mapsize"
	"meshgo.dev/mesh/internal/recordlog"
	"meshgo.dev/mesh/internal/wire"
)

// StandaloneNodeName is the node identity used in continuity records of a
// standalone node, which has no listener and no peers.
const StandaloneNodeName = "standalone@local"

// Network is how a node listens and dials. The default is the host's TCP
// stack; tests pass a fault-injecting network.
type Network interface {
	Listen(network, addr string) (net.Listener, error)
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

type tcpNetwork struct{}

func (tcpNetwork) Listen(network, addr string) (net.Listener, error) {
	return net.Listen(network, addr)
}

func (tcpNetwork) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// MembershipEvent reports a peer joining or leaving the local node's view.
type MembershipEvent struct {
	Node string
	Up   bool
}

// Node is one running Mesh node. A process normally has one, started by
// StartFromEnv; tests may run several in one process with Start.
type Node struct {
	cfg        Config
	self       string
	log        *slog.Logger
	reg        *continuity.Registry
	handlers   *registry
	network    Network
	lookupHost func(ctx context.Context, host string) ([]string, error)
	cert       tls.Certificate
	cookie     []byte

	ctx    context.Context
	cancel context.CancelFunc
	wg     runGroup // background goroutines (sessions, listeners, dials)
	ln     net.Listener

	mu       sync.Mutex // guards sessions, dialing, listeners, incarnations
	sessions map[string]*session
	// linked holds the sessions of the sessions map sorted by peer name,
	// replaced (never changed in place) with n.mu held whenever the map
	// changes: the request path reads it without the lock.
	linked    atomic.Pointer[[]*session]
	dialing   map[string]bool // addresses being dialed
	listeners []func(MembershipEvent)

	// incarnation identifies this process to its peers (wire.Sync): random,
	// never 0, drawn at Start, so a restart from the same state dir is a
	// new incarnation under the same name. incarnations holds, by peer, the
	// one its last session's first snapshot carried (heardIncarnation).
	incarnation  uint64
	incarnations map[string]uint64

	kick chan struct{} // asks discovery for an immediate tick

	// Pause detection: a node that was frozen (SIGSTOP, VM pause) may have
	// been declared lost and replaced. It quarantines itself — completes and
	// dispatches nothing — until a fresh exchange with a peer confirms or
	// fences its authority. The quarantine, like the role and epoch, is
	// state of the authority machine (authority.Machine, stepped through
	// reg.StepAuthority); the node keeps only what the detector measures.
	start    time.Time
	lastTick atomic.Int64 // monotonic nanoseconds since start
	peerSeen atomic.Bool
	arbiter  authority.Arbiter // decides promotions; authority.Peer unless configured
	lease    *leaseKeeper      // the lease that gates the primary role; nil with the peer rule (lease.go)
	authCh   chan struct{}     // closed and replaced whenever authority or quarantine changes
	authMu   sync.Mutex        // guards authCh

	callID     atomic.Uint64
	hsFailures handshakeFailures
	met        nodeMetrics // event counters and latencies (metrics.go)
	admission  *admission
	startups   sync.WaitGroup
	running    runGroup   // handlers in flight
	slots      *workSlots // bounds the declared work running at once (MESH_MAX_RUNNING_WORK)
	stopped    atomic.Bool
	scopeMACs  sync.Pool                   // of *scopeMAC, keyed with the node's caller-tag secret
	anonTags   [4][2 * callerTagBytes]byte // caller tags of no credentials, by number of scope headers

	stateDir   string
	knownMu    sync.Mutex  // guards knownPeers
	knownPeers []string    // peers this node has been connected to, persisted in stateDir
	inflight   inflightSet // request key -> attempt running on this node
	awaiting   awaitWake   // typed-work handles waiting on an outcome here

	store    *logstore.Store // the durable record store; nil with StoreMemory
	graceful atomic.Bool     // Shutdown runs: it closes the store once all is drained
	// firstAttempt is the first attempt this run could allocate: a record
	// of a lower attempt whose ingress is this node was created by an
	// earlier run (the log store gave it back), which may have died
	// before deciding it.
	firstAttempt uint64
	resumeMu     sync.Mutex // serializes resuming recovered work with dispatches of it
	// heldBefore (guarded by resumeMu): the pending work records this node
	// owns whose attempt its previous run held (the log store gave them
	// back), by request key, until resumeRecovered has taken them up. A
	// dispatch of such an attempt resumes it under a new one (handleDispatch).
	heldBefore map[string]uint64
	storeFS    recordlog.FS // the log store's file system; nil is the OS's (tests inject faults)

	placement atomic.Pointer[[]string] // canonical membership, recomputed on membership changes

	// Planned switchover (switchover.go): one at a time; submissions hold
	// the gate for reading while the primary moves its epoch; switching
	// holds requests that cannot act during the hand-over.
	switchMu   sync.Mutex
	switchGate sync.RWMutex
	switching  atomic.Bool

	// Health and the peer view (health.go).
	peerViews  sync.Map     // peer name -> *peerView
	loopTick   atomic.Int64 // node-monotonic nanoseconds of the pause detector's last tick
	rejoining  bool         // started with peers known from a previous run
	everSynced atomic.Bool  // some peer's snapshot was merged since start
	// unsynced counts the registered sessions whose peer's first snapshot
	// has not been applied yet; submissions wait for it (awaitPeerSync).
	unsynced atomic.Int32
	// looking is set, in cluster mode, until the first discovery tick's
	// dials have all ended, when firstLook closes; until then a submission
	// waits (awaitFirstLook): a peer that is up is about to link, and its
	// snapshot may hold keys this node would otherwise run alone.
	looking   atomic.Bool
	firstLook chan struct{}
	// peerOutlivedPrevious: a peer's first snapshot said it knew an earlier
	// process of this node, so that peer recovers what the earlier process
	// held, and resumeRecovered leaves it alone.
	peerOutlivedPrevious atomic.Bool

	// protocol is the newest protocol version the node speaks; zero means
	// handshake.Version (withProtocol).
	protocol uint8
}

// Option changes how Start runs a node; options exist for tests and
// embedding, the environment contract needs none.
type Option func(*Node)

// withProtocol makes the node speak protocol versions up to v only, as a
// node of an older build does (tests).
func withProtocol(v uint8) Option { return func(n *Node) { n.protocol = v } }

// WithNetwork makes the node listen and dial through nw instead of the host's
// TCP stack (for example a fault-injecting network in tests).
func WithNetwork(nw Network) Option { return func(n *Node) { n.network = nw } }

// WithLogger makes the node log through l instead of Config.Logger (or
// slog.Default when that is nil). A nil l changes nothing. The runtime never
// changes the default logger.
func WithLogger(l *slog.Logger) Option {
	return func(n *Node) {
		if l != nil {
			n.log = l
		}
	}
}

// WithLookupHost replaces the resolver used for the discovery seed.
func WithLookupHost(f func(ctx context.Context, host string) ([]string, error)) Option {
	return func(n *Node) { n.lookupHost = f }
}

// Start starts a node with cfg. It first checks cfg with Validate and returns
// that error, starting nothing, when cfg is invalid. In cluster mode it binds
// the listener on the host and port of the node name, starts discovery and
// heartbeats, and begins startup work for every declared work function.
func Start(cfg Config, opts ...Option) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{
		cfg: cfg, log: cfg.Logger, handlers: defaultRegistry, network: tcpNetwork{},
		sessions: map[string]*session{}, dialing: map[string]bool{},
		kick: make(chan struct{}, 1), start: time.Now(), authCh: make(chan struct{}),
		admission: newAdmission(time.Now), arbiter: authority.Peer{},
		incarnation: randUint64() | 1, incarnations: map[string]uint64{},
		slots: newWorkSlots(cfg.MaxRunningWork), firstLook: make(chan struct{}),
	}
	for _, o := range opts {
		o(n)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.initKeyScope()

	role, epoch := cfg.Role, cfg.Epoch
	var persist func(continuity.Role, uint64) error
	if cfg.mode() == ModeCluster {
		n.self = cfg.NodeName.String()
		n.cookie = []byte(cfg.Cookie)
		dir := cfg.StateDir
		if dir == "" {
			var err error
			if dir, err = authority.DefaultDir(n.self); err != nil {
				return nil, fmt.Errorf("mesh bootstrap start failed node=%s: %w", n.self, err)
			}
		}
		n.stateDir = dir
		for _, p := range authority.LoadPeers(dir) {
			if p != n.self {
				n.knownPeers = append(n.knownPeers, p)
			}
		}
		n.rejoining = len(n.knownPeers) > 0
		path := filepath.Join(dir, "authority.json")
		persisted, ok, err := authority.Load(path)
		if err != nil {
			return nil, fmt.Errorf("mesh bootstrap start failed node=%s: %w", n.self, err)
		}
		if ok {
			merged := authority.Merge(authority.State{Role: string(role), Epoch: epoch}, persisted)
			role, epoch = continuity.Role(merged.Role), merged.Epoch
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("mesh bootstrap start failed node=%s: state dir: %w", n.self, err)
		}
		if err := authority.Save(path, authority.State{Role: string(role), Epoch: epoch}); err != nil {
			return nil, fmt.Errorf("mesh bootstrap start failed node=%s: %w", n.self, err)
		}
		persist = func(r continuity.Role, e uint64) error {
			return authority.Save(path, authority.State{Role: string(r), Epoch: e})
		}
		cert, err := handshake.NewCertificate()
		if err != nil {
			return nil, fmt.Errorf("mesh bootstrap start failed node=%s: certificate: %w", n.self, err)
		}
		n.cert = cert
		if err := n.openLeaseArbiter(cfg); err != nil {
			return nil, fmt.Errorf("mesh bootstrap start failed node=%s: %w", n.self, err)
		}
		if n.lease != nil {
			n.arbiter = n.lease
		}
	} else {
		n.lease = nil // the primary role of a standalone node needs no lease
		n.self = StandaloneNodeName
	}
	ls, recovered, err := n.openStore(cfg, n.stateDir)
	if err != nil {
		n.log.Error("[mesh-rt continuity] record store open failed", "node", n.self, "error", err.Error())
		n.closeLease()
		return nil, fmt.Errorf("mesh bootstrap start failed node=%s: %w", n.self, err)
	}
	var store continuity.Store // nil: the registry's MemoryStore
	if ls != nil {
		n.store, store = ls, ls
	}
	n.reg = continuity.NewRegistry(continuity.Options{
		Self: n.self, Role: role, Epoch: epoch, Retain: cfg.RetainedRecords, RetainBytes: cfg.RetainedBytes,
		Diag: continuity.NewDiagnostics(cfg.DiagnosticsCapacity), Sink: n.logEntry, Persist: persist,
		RoutineRoutes: n.log.Enabled(context.Background(), slog.LevelDebug), Store: store,
	})
	n.firstAttempt = n.reg.Watermark()
	var resume []continuity.Record // pending records of this node's previous run
	if ls != nil {
		n.reportRecovered(recovered)
		for _, rec := range n.reg.PendingRecords() {
			if rec.OwnerNode == n.self || rec.IngressNode == n.self {
				resume = append(resume, rec)
			}
			if rec.OwnerNode == n.self && rec.Kind == continuity.KindWork {
				if n.heldBefore == nil {
					n.heldBefore = map[string]uint64{}
				}
				n.heldBefore[rec.RequestKey] = rec.Attempt
			}
		}
	}
	n.placement.Store(&[]string{n.self})

	if cfg.mode() == ModeCluster {
		n.reg.SetAloneSlot(n.aloneSlot()) // no peer is linked yet
		ln, err := n.network.Listen("tcp", cfg.NodeName.Addr())
		if err != nil {
			n.log.Error("[mesh-rt transport] listen failed", "node", n.self, "error", err.Error())
			n.closeStore()
			return nil, fmt.Errorf("mesh bootstrap start failed node=%s: listener bind failed", n.self)
		}
		n.ln = ln
		n.log.Info("[mesh-rt transport] listening", "node", n.self, "cluster_role", string(role), "promotion_epoch", epoch)
		n.goRun(n.acceptLoop)
		n.looking.Store(true)
		n.goRun(n.discoveryLoop)
		n.goRun(n.pauseDetector)
		if n.lease != nil {
			n.goRun(n.lease.run)
		}
	}
	n.resumeRecovered(resume)
	n.startStartupWork()
	return n, nil
}

func (n *Node) goRun(f func()) {
	if !n.wg.add() {
		return // stopped and drained: nothing new runs
	}
	go func() {
		defer n.wg.done()
		f()
	}()
}

// Name is the node's name (StandaloneNodeName in standalone mode).
func (n *Node) Name() string { return n.self }

// Mode is the node's bootstrap mode.
func (n *Node) Mode() Mode { return n.cfg.mode() }

// Authority returns the node's current role and promotion epoch.
func (n *Node) Authority() (Role, uint64) { return n.reg.Authority() }

// Peers returns the names of the connected peers, sorted.
func (n *Node) Peers() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.sessions))
	for name := range n.sessions {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Members returns the local node and its connected peers.
func (n *Node) Members() []string { return append([]string{n.self}, n.Peers()...) }

// OnMembership registers fn to be called whenever a peer joins or leaves.
// fn runs synchronously on the runtime goroutine that saw the change, in the
// order of the changes, so it must return quickly and must not call back into
// membership-changing methods.
func (n *Node) OnMembership(fn func(MembershipEvent)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.listeners = append(n.listeners, fn)
}

// Record returns the continuity record for key as this node sees it.
func (n *Node) Record(key string) (Record, bool) { return n.reg.Get(key) }

// Records returns every continuity record this node holds.
func (n *Node) Records() []Record { return n.reg.Records() }

// Diagnostics returns a snapshot of the node's diagnostic ring.
func (n *Node) Diagnostics() Snapshot { return n.reg.Diagnostics().Snapshot() }

// Shutdown stops the node gracefully: a primary with a connected standby
// first hands the role over to it (a planned switchover), then it refuses
// new work at once, lets the
// handlers already running finish (until ctx is done), then closes its
// sessions and listener — the peer sees the node leave only after its
// in-flight work is recorded.
func (n *Node) Shutdown(ctx context.Context) error {
	n.handOverOnShutdown(ctx)
	if !n.stopped.CompareAndSwap(false, true) {
		// Stopped already: by an earlier Shutdown, or crashed (a test's
		// killed node). Its goroutines may still be finishing what they
		// were doing (a handshake saving the peer it learned under the
		// state directory, say); wait for them, within ctx, so that
		// nothing of the node runs once Shutdown returns.
		select {
		case <-n.wg.closeAndWait():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	drained := n.running.closeAndWait()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
	}
	// Whatever is still queued for the peers (batched route transitions)
	// goes out, and is applied there, before the links close.
	for _, s := range n.sessionList() {
		if s.flush(ctx) == nil {
			n.barrier(ctx, s)
		}
	}
	n.graceful.Store(true)
	n.crash()
	done := make(chan struct{})
	go func() {
		<-n.wg.closeAndWait()
		<-drained
		n.startups.Wait()
		close(done)
	}()
	select {
	case <-done:
		n.closeStore() // nothing calls the registry any more
		n.closeLease()
	case <-ctx.Done():
		err = ctx.Err()
	}
	return err
}

// crash stops the node abruptly, as a killed process would: contexts are
// cancelled and every connection is closed without waiting for anything.
func (n *Node) crash() {
	n.stopped.Store(true)
	n.cancel()
	if n.ln != nil {
		n.ln.Close()
	}
	n.mu.Lock()
	for _, s := range n.sessions {
		s.close(errors.New("node shutting down"))
	}
	n.mu.Unlock()
	if !n.graceful.Load() {
		// The log's lock is released, as a killed process's is, so the
		// node can be started again in this process (what is queued is
		// still written: a stopped node is not a lost disk).
		n.closeStore()
	}
}

// ---- authority and quarantine ----------------------------------------------

// authorityChanged wakes everyone waiting in awaitAuthority.
func (n *Node) authorityChanged() {
	n.authMu.Lock()
	close(n.authCh)
	n.authCh = make(chan struct{})
	n.authMu.Unlock()
}

func (n *Node) authWait() <-chan struct{} {
	n.authMu.Lock()
	defer n.authMu.Unlock()
	return n.authCh
}

// pauseThreshold is how long the node may go without running its ticker
// before it assumes its peer may have declared it lost.
func (n *Node) pauseThreshold() time.Duration { return n.cfg.PeerTimeout / 2 }

func (n *Node) mono() int64 { return int64(time.Since(n.start)) }

// pauseDetector ticks often; a gap between ticks longer than the threshold
// means the process was frozen.
func (n *Node) pauseDetector() {
	t := time.NewTicker(n.liveInterval())
	defer t.Stop()
	n.lastTick.Store(n.mono())
	n.loopTick.Store(n.mono())
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			n.loopTick.Store(n.mono())
			n.checkPause()
			n.maybeReleaseAlone()
		}
	}
}

// checkPause is the pause detector's event: if its ticker has not run for
// longer than the threshold, the authority machine quarantines the node (once
// a peer was ever linked: it may have declared this node lost). It returns
// whether the node is quarantined.
func (n *Node) checkPause() bool {
	now := n.mono()
	gap := time.Duration(now - n.lastTick.Load())
	if gap > n.pauseThreshold() && n.peerSeen.Load() && !n.reg.Quarantined() {
		_, _ = n.stepAuthority(authority.Paused{Now: time.Duration(now), Gap: gap, Threshold: n.pauseThreshold(),
			PeerSeen: true, Nonce: randUint64()}, nil)
	}
	if gap >= time.Millisecond {
		// Under load every request checks; storing each time would bounce
		// the cache line between cores for nothing. A tick up to 1 ms old
		// still measures a pause of the threshold's size. Stored after the
		// quarantine: a request in between still sees the gap.
		n.lastTick.Store(now)
	}
	return n.reg.Quarantined()
}

// confirmed reports whether the node may act on its authority now: it is
// not quarantined, and its pause detector has not missed a pause it has yet
// to judge. It changes no authority: a pause it sees is quarantined by the
// detector's next tick (checkPause), and until then confirmed says no.
func (n *Node) confirmed() bool {
	if n.cfg.mode() != ModeCluster {
		return true
	}
	if n.reg.Quarantined() {
		return false
	}
	if n.lease != nil && !n.lease.mayAct() {
		return false // a primary past its lease's deadline
	}
	now := n.mono()
	gap := time.Duration(now - n.lastTick.Load())
	if gap > n.pauseThreshold() && n.peerSeen.Load() {
		return false
	}
	if gap >= time.Millisecond {
		n.lastTick.Store(now) // see checkPause
	}
	return true
}

// stepAuthority applies ev to the authority machine and carries out its
// effects: waking waiters, pinging peers after a quarantine, acting on a
// deferred loss, resyncing peers after a fencing. trigger names the record
// that carried a peer's authority, if any. It returns the effects, or the
// error of a change that could not be persisted (and did not happen).
func (n *Node) stepAuthority(ev authority.Event, trigger *continuity.Record) (authority.Effects, error) {
	eff, err := n.reg.StepAuthority(ev, trigger)
	if err != nil {
		return eff, err
	}
	if eff.Fenced != nil || eff.Promoted != nil || eff.SteppedDown != nil || eff.Adopted != nil || eff.Quarantined != nil || eff.Released != "" {
		n.authorityChanged()
	}
	if q := eff.Quarantined; q != nil {
		for _, s := range n.sessionList() {
			_ = s.send(wire.Ping{Nonce: q.Nonce, Authority: n.authorityMsg()})
		}
		n.kickDiscovery()
	}
	if eff.Retry != "" {
		n.retryDeferredLoss(eff.Retry)
	}
	if eff.Fenced != nil {
		// Off the reader goroutine: a snapshot can be large, and two readers
		// writing at each other would stall until the write deadline.
		n.goRun(n.broadcastSync)
	}
	return eff, nil
}

// maybeReleaseAlone releases a quarantine that no peer can settle: after long
// enough with no peer reachable, the node carries on with the authority it has.
func (n *Node) maybeReleaseAlone() {
	if !n.reg.Quarantined() {
		return
	}
	wait := 2*n.cfg.DiscoveryInterval + 2*n.cfg.PeerTimeout
	_, _ = n.stepAuthority(authority.Alone{Now: time.Duration(n.mono()), Wait: wait, Peers: len(n.Peers())}, nil)
}

// awaitAuthority blocks while the node is quarantined. It returns false when
// the node shut down or was fenced since gen.
func (n *Node) awaitAuthority(ctx context.Context, gen uint64) bool {
	for {
		ch := n.authWait()
		if n.reg.FenceGeneration() != gen {
			return false
		}
		if n.confirmed() {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		case <-n.ctx.Done():
			return false
		case <-time.After(n.cfg.HeartbeatInterval):
		}
	}
}

// observeAuthority applies a peer's role and epoch; trigger names the record
// that carried it, if any.
func (n *Node) observeAuthority(peer string, role Role, epoch uint64, trigger *continuity.Record) {
	if !n.reg.FencedBy(peer, role, epoch) {
		return // the common case: nothing changes, and no event is built for it
	}
	if _, err := n.stepAuthority(authority.Observed{Peer: peer, Role: string(role), Epoch: epoch}, trigger); err != nil {
		n.log.Error("[mesh-rt continuity] authority change not persisted", "error", err.Error())
	}
}

// peerConfirmed applies a peer's answer to the ping carrying nonce.
func (n *Node) peerConfirmed(peer string, nonce uint64) {
	if n.reg.Quarantined() {
		_, _ = n.stepAuthority(authority.NonceConfirmed{Peer: peer, Nonce: nonce}, nil)
	}
}

// resynced applies a peer's full snapshot, received on a session that
// started at node-monotonic time started.
func (n *Node) resynced(peer string, started int64) {
	if n.reg.Quarantined() {
		_, _ = n.stepAuthority(authority.Resynced{Peer: peer, SessionStart: time.Duration(started)}, nil)
	}
}

func randUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// ---- membership --------------------------------------------------------------

func (n *Node) sessionList() []*session { return n.appendSessions(nil) }

// appendSessions appends the current sessions to dst, sorted by peer name.
// It takes no lock: every replicated transition calls it.
func (n *Node) appendSessions(dst []*session) []*session {
	if l := n.linked.Load(); l != nil {
		dst = append(dst, *l...)
	}
	return dst
}

// session returns the current session to peer, or nil. It takes no lock.
func (n *Node) session(peer string) *session {
	if l := n.linked.Load(); l != nil {
		for _, s := range *l {
			if s.peer == peer {
				return s
			}
		}
	}
	return nil
}

// register installs s as the session to its peer, resolving two sessions
// between the same pair deterministically: the connection dialed by the node
// whose name sorts first wins on both sides. It reports whether s was kept.
func (n *Node) register(s *session) bool {
	n.mu.Lock()
	old := n.sessions[s.peer]
	preferred := s.outgoing == (n.self < s.peer)
	if old != nil && !old.isClosed() && (!preferred || old.outgoing == s.outgoing) {
		n.mu.Unlock()
		return false
	}
	s.mark = n.reg.Watermark() // before placement can name the peer
	s.knew = n.incarnations[s.peer]
	s.counted = true
	n.unsynced.Add(1)
	n.sessions[s.peer] = s
	n.sessionsChangedLocked()
	n.reg.SetAloneSlot(-1)
	fresh := old == nil || old.isClosed()
	listeners := slices.Clone(n.listeners)
	n.mu.Unlock()
	if old != nil {
		old.close(errors.New("replaced by a preferred connection"))
	}
	n.peerSeen.Store(true)
	n.rememberPeer(s.peer)
	if fresh {
		n.log.Info("[mesh-rt membership] node up", "node", n.self, "peer", s.peer, "direction", s.direction())
		for _, fn := range listeners {
			fn(MembershipEvent{Node: s.peer, Up: true})
		}
	}
	return true
}

// sessionsChangedLocked publishes what the request path reads of the
// sessions map after a change: the canonical membership placement uses, and
// the sessions themselves. Caller holds n.mu.
func (n *Node) sessionsChangedLocked() {
	m := []string{n.self}
	linked := make([]*session, 0, len(n.sessions))
	for name, s := range n.sessions {
		m = append(m, name)
		linked = append(linked, s)
	}
	slices.SortFunc(linked, func(a, b *session) int { return strings.Compare(a.peer, b.peer) })
	n.linked.Store(&linked)
	c := continuity.CanonicalMembership(m)
	n.placement.Store(&c)
}

// rememberPeer adds peer to the persisted known peers.
func (n *Node) rememberPeer(peer string) {
	n.knownMu.Lock()
	defer n.knownMu.Unlock()
	if slices.Contains(n.knownPeers, peer) {
		return
	}
	n.knownPeers = append(n.knownPeers, peer)
	sort.Strings(n.knownPeers)
	if err := authority.SavePeers(n.stateDir, n.knownPeers); err != nil {
		n.log.Warn("[mesh-rt membership] known peers not saved", "error", err.Error())
	}
}

// known returns the peers this node has been connected to before.
func (n *Node) known() []string {
	n.knownMu.Lock()
	defer n.knownMu.Unlock()
	return slices.Clone(n.knownPeers)
}

// aloneSlot is the parity of the attempts this node allocates while no peer
// is linked (Registry.SetAloneSlot): 0 if its name sorts before the peer it
// knows, 1 otherwise; a node that knows no peer yet goes by its configured
// role (primary 0, standby 1).
func (n *Node) aloneSlot() int {
	for _, p := range n.known() {
		if p != n.self {
			if n.self < p {
				return 0
			}
			return 1
		}
	}
	if n.cfg.Role == RoleStandby {
		return 1
	}
	return 0
}

// unregister removes s if it is still the registered session for its peer and
// runs node-loss handling.
func (n *Node) unregister(s *session, cause error) {
	s.settle()
	n.mu.Lock()
	if n.sessions[s.peer] != s {
		n.mu.Unlock()
		return
	}
	delete(n.sessions, s.peer)
	n.sessionsChangedLocked()
	if len(n.sessions) == 0 {
		n.reg.SetAloneSlot(n.aloneSlot())
	}
	listeners := slices.Clone(n.listeners)
	n.mu.Unlock()
	if n.stopped.Load() {
		return
	}
	n.log.Info("[mesh-rt membership] node down", "node", n.self, "peer", s.peer, "reason", cause.Error())
	for _, fn := range listeners {
		fn(MembershipEvent{Node: s.peer, Up: false})
	}
	n.kickDiscovery()
	n.peerLost(s.peer)
}

func (n *Node) kickDiscovery() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// ---- transport ---------------------------------------------------------------

func (n *Node) handshakeConfig(kind handshake.Kind) handshake.Config {
	return handshake.Config{LocalName: n.self, Kind: kind, Cookie: n.cookie, Certificate: n.cert, Timeout: handshakeTimeout,
		Version: n.protocol, MinVersion: uint8(n.cfg.MinProtocolVersion)}
}

const handshakeTimeout = 5 * time.Second

func (n *Node) acceptLoop() {
	for {
		conn, err := n.ln.Accept()
		if err != nil {
			if n.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			n.log.Warn("[mesh-rt transport] accept failed", "error", err.Error())
			select {
			case <-time.After(50 * time.Millisecond):
			case <-n.ctx.Done():
				return
			}
			continue
		}
		// Admission runs here, before any goroutine or TLS work: a
		// connection over the limits costs one accept and one close.
		t, refused := n.admission.admit(conn.RemoteAddr())
		if refused != "" {
			conn.Close()
			n.handshakeFailed(conn.RemoteAddr().String(), refused, "")
			continue
		}
		n.goRun(func() { n.serveConn(conn, t) })
	}
}

// serveConn authenticates one inbound connection on its own goroutine, so a
// client that sends nothing delays nobody else; t is its admission ticket.
func (n *Node) serveConn(raw net.Conn, t *ticket) {
	cfg := n.handshakeConfig(handshake.KindNode)
	cfg.TLSTimeout = preTLSTimeout
	res, err := handshake.Server(n.ctx, raw, cfg)
	t.done(err == nil)
	if err != nil {
		raw.Close()
		if n.ctx.Err() == nil {
			n.handshakeFailed(raw.RemoteAddr().String(), failureReason(err), err.Error())
		}
		return
	}
	switch res.RemoteKind {
	case handshake.KindOperator:
		n.serveOperator(res.Conn)
	case handshake.KindNode:
		if res.RemoteName == n.self {
			res.Conn.Close()
			return
		}
		n.startSession(res.Conn, res.RemoteName, false, res.Version)
	default:
		res.Conn.Close()
	}
}

// failureReason classifies a failed handshake for diagnostics.
func failureReason(err error) string {
	switch {
	case errors.Is(err, handshake.ErrAuthFailed):
		return reasonAuthFailed
	case errors.Is(err, handshake.ErrBelowMinimum):
		return reasonBelowMinimum
	}
	return reasonHandshakeFailed
}

// dial connects to addr and registers the session. It returns the peer's name.
func (n *Node) dial(ctx context.Context, addr string, timeout time.Duration) (string, error) {
	n.mu.Lock()
	if n.dialing[addr] {
		n.mu.Unlock()
		return "", fmt.Errorf("dial %s: already in progress", addr)
	}
	n.dialing[addr] = true
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.dialing, addr)
		n.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg := n.handshakeConfig(handshake.KindNode)
	cfg.Timeout = timeout
	res, err := n.dialHandshake(ctx, addr, cfg)
	if v, older := handshake.PeerVersion(err); older {
		// A peer on an older protocol version refused this one's hello,
		// naming its own: dial again offering it (an upgrade under way),
		// unless MESH_CLUSTER_MIN_PROTOCOL says the upgrade is over.
		if floor := cfg.MinVersion; floor != 0 && v < floor {
			err = fmt.Errorf("%w: peer at %s speaks protocol version %d only, below this node's minimum %d (%s)",
				handshake.ErrBelowMinimum, addr, v, floor, envMinProtocol)
		} else {
			cfg.Version = v
			res, err = n.dialHandshake(ctx, addr, cfg)
		}
	}
	var derr *dialError
	if errors.As(err, &derr) {
		return "", derr
	}
	if err != nil {
		if reason := failureReason(err); reason != reasonHandshakeFailed {
			// Timeouts and refusals of dials are the peer's absence, which
			// failure handling reports; a cookie mismatch, or a peer on a
			// protocol version this node no longer links on, is worth a
			// count.
			n.handshakeFailed(addr, reason, err.Error())
		} else {
			n.log.Debug("[mesh-rt transport] handshake failed", "remote_addr", addr, "error", err.Error())
		}
		return "", fmt.Errorf("handshake with %s: %w", addr, err)
	}
	if res.RemoteName == n.self {
		res.Conn.Close()
		return res.RemoteName, nil
	}
	n.startSession(res.Conn, res.RemoteName, true, res.Version)
	return res.RemoteName, nil
}

// dialHandshake connects to addr and runs the client side of the handshake
// with cfg, within ctx. A failed connection is a *dialError; a failed
// handshake is the handshake's error.
func (n *Node) dialHandshake(ctx context.Context, addr string, cfg handshake.Config) (handshake.Result, error) {
	raw, err := n.network.DialContext(ctx, "tcp", addr)
	if err != nil {
		return handshake.Result{}, &dialError{addr: addr, err: err}
	}
	return handshake.Client(ctx, raw, cfg) // closes raw on failure
}

// dialError is a connection to a peer's address that failed before any
// handshake.
type dialError struct {
	addr string
	err  error
}

func (e *dialError) Error() string { return fmt.Sprintf("dial %s: %v", e.addr, e.err) }
func (e *dialError) Unwrap() error { return e.err }

// inflightSet holds the attempts executing on this node, by request key.
type inflightSet struct {
	mu   sync.Mutex
	m    map[string]uint64
	peak int // for mapsize: m is rebuilt after a burst drains
}

func (f *inflightSet) add(key string, attempt uint64) {
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]uint64{}
	}
	f.m[key] = attempt
	mapsize.Grew(f.m, &f.peak)
	f.mu.Unlock()
}

// done removes key if it still maps to attempt.
func (f *inflightSet) done(key string, attempt uint64) {
	f.mu.Lock()
	if a, ok := f.m[key]; ok && a == attempt {
		delete(f.m, key)
		f.m = mapsize.Rebuilt(f.m, &f.peak)
	}
	f.mu.Unlock()
}

// hasAttempt reports whether attempt of key is executing on this node.
func (f *inflightSet) hasAttempt(key string, attempt uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.m[key]
	return ok && a == attempt
}

func (f *inflightSet) has(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.m[key]
	return ok
}

// runGroup counts goroutines of one kind (handlers, background loops) on
// this node. Unlike a WaitGroup, starting one may race with waiting for all
// of them: once the group is closed and has drained, nothing new starts, and
// while it drains those already running may still start others (work
// submitted by a handler). Every clustered request counts itself in and out,
// so add and done are one atomic operation each, without a lock.
type runGroup struct {
	// state is the count of goroutines running, with runGroupClosed set
	// once the group is closed.
	state atomic.Uint64
	// mu serializes closeAndWait.
	mu sync.Mutex
	// drained is made by closeAndWait before it sets runGroupClosed, and
	// closed once the count is 0 with the group closed.
	drained chan struct{}
}

// runGroupClosed is the closed flag in runGroup.state.
const runGroupClosed = 1 << 63

// add counts one more handler, or reports false once the group is closed
// and drained: the node is stopping and the handler must not start.
func (g *runGroup) add() bool {
	for {
		s := g.state.Load()
		if s == runGroupClosed {
			return false
		}
		if g.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

func (g *runGroup) done() {
	if g.state.Add(^uint64(0)) == runGroupClosed {
		// The last one out of a closed group: once closed and at 0 the
		// group never grows again, so this happens once.
		close(g.drained)
	}
}

// closeAndWait closes the group and returns a channel closed once no
// handler runs.
func (g *runGroup) closeAndWait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.drained == nil {
		g.drained = make(chan struct{})
		if g.state.Or(runGroupClosed) == 0 {
			close(g.drained)
		}
	}
	return g.drained
}
