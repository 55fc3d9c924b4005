package cluster

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/wire"
)

var errSessionClosed = errors.New("cluster session closed")

// session is an authenticated link to one peer. One goroutine reads and
// dispatches frames in order; one goroutine writes, coalescing every frame
// queued meanwhile into a single buffered flush (one TLS record and one
// syscall for many frames under load); a third sends heartbeats. Any frame
// counts as a sign of life: a peer silent for the peer timeout is lost.
type session struct {
	n        *Node
	peer     string
	conn     net.Conn
	outgoing bool
	started  int64 // node-monotonic nanoseconds at registration

	// Outgoing frames, in send order, shared by every sender and writeLoop.
	wmu       sync.Mutex
	wbuf      []byte          // encoded frames writeLoop has not taken yet
	lazy      lazyRecords     // record transitions queued after all of wbuf
	wurgent   bool            // wbuf holds a frame that must go out now
	wlazy     bool            // a lazy flush is scheduled
	wwaiters  []chan struct{} // closed once what was queued before them is written
	wroom     chan struct{}   // closed (and replaced) when writeLoop takes wbuf
	wake      chan struct{}   // capacity 1: writeLoop has something to do
	lazyDelay time.Duration   // lazyFlushDelay, but for tests
	lazyTimer *time.Timer

	closed    chan struct{}
	closeOnce sync.Once
	err       error // why the session closed; set before closed is closed

	synced   chan struct{} // closed when the peer's first Sync was applied
	syncOnce sync.Once

	calls  sync.Map // call id -> chan wire.Message
	routes sync.Map // route id -> context.CancelFunc for requests this node executes
}

func (s *session) direction() string {
	if s.outgoing {
		return "outgoing"
	}
	return "incoming"
}

func (s *session) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// isSynced reports whether the peer's first snapshot was applied.
func (s *session) isSynced() bool {
	select {
	case <-s.synced:
		return true
	default:
		return false
	}
}

func (s *session) close(cause error) {
	s.closeOnce.Do(func() {
		s.err = cause
		close(s.closed)
		s.conn.Close()
	})
}

// startSession registers a freshly authenticated connection and starts its
// reader and heartbeat.
func (n *Node) startSession(conn net.Conn, peer string, outgoing bool) {
	s := &session{n: n, peer: peer, conn: conn, outgoing: outgoing, started: n.mono(),
		closed: make(chan struct{}), synced: make(chan struct{}), wake: make(chan struct{}, 1), wroom: make(chan struct{}),
		lazyDelay: lazyFlushDelay}
	s.lazyTimer = time.AfterFunc(time.Hour, s.kick)
	s.lazyTimer.Stop()
	if !n.register(s) {
		conn.Close()
		return
	}
	n.goRun(s.writeLoop)
	n.goRun(s.readLoop)
	n.goRun(s.heartbeatLoop)
	if peers := n.Peers(); len(peers) > 1 {
		_ = s.send(wire.PeerList{Names: peers})
	}
	for _, m := range n.syncMessages() {
		if s.send(m) != nil {
			return
		}
	}
}

func (n *Node) authorityMsg() wire.Authority {
	role, epoch := n.reg.Authority()
	return wire.Authority{Role: role, Epoch: epoch}
}

// syncChunkBytes bounds the approximate encoded size of one Sync frame, so a
// snapshot of many records (or of records carrying stored responses) never
// nears the frame cap and heartbeats keep flowing between chunks.
const syncChunkBytes = 2 << 20

func approxRecordSize(r continuity.Record) int {
	return 256 + len(r.RequestKey) + len(r.PayloadHash) + len(r.IngressNode) + len(r.OwnerNode) +
		len(r.ReplicaNode) + len(r.ExecutionNode) + len(r.Error) + len(r.RuntimeName) + len(r.Response) +
		len(r.Input) + len(r.Output)
}

func (n *Node) syncMessages() []wire.Message {
	recs := n.reg.Records()
	auth := n.authorityMsg()
	wm := n.reg.Watermark()
	var out []wire.Message
	start, size := 0, 0
	for i, r := range recs {
		sz := approxRecordSize(r)
		if size+sz > syncChunkBytes && i > start {
			out = append(out, wire.Sync{Authority: auth, AttemptWatermark: wm, Records: recs[start:i]})
			start, size = i, 0
		}
		size += sz
	}
	return append(out, wire.Sync{Authority: auth, AttemptWatermark: wm, Records: recs[start:]})
}

// broadcastSync resends the whole local state to every peer, used after the
// local authority was lowered so the peer learns what this node still holds.
func (n *Node) broadcastSync() {
	for _, s := range n.sessionList() {
		for _, m := range n.syncMessages() {
			if s.send(m) != nil {
				break
			}
		}
	}
}

// broadcast sends one record transition to every peer. Transitions of route
// records go out with the next flush, at most lazyFlushDelay later, except the
// outcome of a mirrored (count 2) record: nothing acts on the others after a
// failover (route records are never re-run), so batching them saves a write
// and a wake-up on both nodes per request. A later transition of the same
// record replaces one still queued, so a request that completes within the
// delay costs the peer one upsert, not two. A frame sent after them, such as
// a forwarded request that needs its record on the peer, still follows them
// on the link.
func (n *Node) broadcast(rec continuity.Record) {
	if n.cfg.mode() != ModeCluster {
		return
	}
	lazy := rec.Kind == continuity.KindRoute && (rec.ReplicationCount < 2 || !rec.Phase.Terminal())
	var arr [4]*session
	sessions := n.appendSessions(arr[:0])
	if len(sessions) == 0 {
		return
	}
	m := wire.Upsert{Authority: n.authorityMsg(), AttemptWatermark: n.reg.Watermark(), Record: rec}
	bp := frameScratch.Get().(*[]byte)
	msg := wire.AppendUpsert((*bp)[:0], &m)
	kind := frameUrgent
	switch {
	case lazy && rec.Phase.Terminal():
		kind = frameLazyLast
	case lazy:
		kind = frameLazy
	}
	for _, s := range sessions {
		_ = s.enqueueFrame(nil, msg, rec.RequestKey, kind)
	}
	if cap(msg) <= maxPooledFrame {
		*bp = msg
		frameScratch.Put(bp)
	}
}

// frameScratch holds buffers broadcast encodes a message into once for all
// sessions.
var frameScratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledFrame = 64 << 10

// Outgoing queue bounds.
const (
	// lazyFlushDelay is how long a frame nobody waits for may sit in the
	// queue before it is written; anything urgent writes it sooner.
	lazyFlushDelay = 10 * time.Millisecond
	// maxQueuedBytes bounds the encoded frames waiting for the writer; a
	// sender finding more waits (backpressure) rather than grow memory.
	maxQueuedBytes = 8 << 20
	// keptWriteBuffer is the largest buffer the writer keeps for reuse.
	keptWriteBuffer = 256 << 10
)

// send queues one message to be written at once. It fails only when the
// session is closed; a write error later closes the session, which every
// caller waiting for a reply observes.
func (s *session) send(m wire.Message) error { return s.enqueueFrame(m, nil, "", frameUrgent) }

// frameKind says when a queued frame is written.
type frameKind uint8

const (
	// frameUrgent wakes the writer at once.
	frameUrgent frameKind = iota
	// frameLazy is a record transition that may wait up to lazyFlushDelay;
	// a later transition of the same key replaces it while it waits.
	frameLazy
	// frameLazyLast is frameLazy for a final (terminal) transition: nothing
	// is expected to replace it, so it is not indexed for replacement.
	frameLazyLast
)

// lazyRecords holds encoded record transitions that may wait up to
// lazyFlushDelay, at most one per request key: queuing a newer transition of
// a key drops the older one. Merging is by state, so the peer loses nothing
// by never seeing a state that was already superseded.
type lazyRecords struct {
	buf  []byte      // length-prefixed frames, including dropped ones
	ents []lazyEntry // in queue order
	live map[string]int
	dead int // bytes of buf held by dropped frames
}

type lazyEntry struct {
	start, end int
	dropped    bool
}

// drop forgets the queued transition of key, if any.
func (l *lazyRecords) drop(key string) {
	if i, ok := l.live[key]; ok {
		e := &l.ents[i]
		e.dropped = true
		l.dead += e.end - e.start
		delete(l.live, key)
	}
}

// add records the frame appended to buf since start as the newest
// transition of key; only an indexed one can be replaced later.
func (l *lazyRecords) add(key string, start int, indexed bool) {
	l.drop(key)
	if indexed {
		if l.live == nil {
			l.live = map[string]int{}
		}
		l.live[key] = len(l.ents)
	}
	l.ents = append(l.ents, lazyEntry{start: start, end: len(l.buf)})
}

// moveTo appends the queued frames, in queue order, to dst and empties l.
func (l *lazyRecords) moveTo(dst []byte) []byte {
	if len(l.ents) == 0 {
		return dst
	}
	if l.dead == 0 && len(dst) == 0 {
		// Nothing precedes the queued frames: hand over the buffer itself
		// and keep dst's for the next batch rather than copy.
		dst, l.buf = l.buf, dst
	} else if l.dead == 0 {
		dst = append(dst, l.buf...)
	} else {
		for _, e := range l.ents {
			if !e.dropped {
				dst = append(dst, l.buf[e.start:e.end]...)
			}
		}
	}
	l.buf, l.ents, l.dead = l.buf[:0], l.ents[:0], 0
	clear(l.live)
	if cap(l.buf) > keptWriteBuffer {
		l.buf = nil
	}
	return dst
}

func (l *lazyRecords) size() int { return len(l.buf) - l.dead }

// enqueueFrame queues m, or when m is nil the encoded message msg, as one
// frame of the given kind. A lazy frame (a transition of the record key,
// which must then be set) waits up to lazyFlushDelay; an urgent one wakes
// the writer now. A frame carrying a transition of key replaces a queued
// lazy one of the same key.
//
// Order on the link is the order of the calls, except that a lazy frame
// replaced by a newer one is not sent at all: before any frame that is not
// lazy joins the queue, every lazy frame queued so far is moved ahead of it.
func (s *session) enqueueFrame(m wire.Message, msg []byte, key string, kind frameKind) error {
	lazy := kind != frameUrgent
	s.wmu.Lock()
	for len(s.wbuf)+s.lazy.size() > maxQueuedBytes {
		room := s.wroom
		s.wmu.Unlock()
		select {
		case <-room:
		case <-s.closed:
			return errSessionClosed
		}
		s.wmu.Lock()
	}
	if s.isClosed() {
		s.wmu.Unlock()
		return errSessionClosed
	}
	dst := &s.wbuf
	if lazy {
		dst = &s.lazy.buf
	} else {
		if key != "" {
			s.lazy.drop(key)
		}
		s.wbuf = s.lazy.moveTo(s.wbuf)
	}
	start := len(*dst)
	if m != nil {
		*dst = wire.AppendEncode(append(*dst, 0, 0, 0, 0), m)
	} else {
		*dst = append(append(*dst, 0, 0, 0, 0), msg...)
	}
	size := len(*dst) - start - 4
	if size > wire.MaxFrame {
		*dst = (*dst)[:start]
		s.wmu.Unlock()
		return fmt.Errorf("send to %s: frame of %d bytes exceeds the cap", s.peer, size)
	}
	binary.LittleEndian.PutUint32((*dst)[start:], uint32(size))
	kick := false
	if lazy {
		s.lazy.add(key, start, kind == frameLazy)
		if !s.wlazy && !s.wurgent {
			s.wlazy = true
			s.lazyTimer.Reset(s.lazyDelay)
		}
	} else {
		kick = !s.wurgent
		s.wurgent = true
	}
	s.wmu.Unlock()
	if kick {
		s.kick()
	}
	return nil
}

// kick wakes the writer.
func (s *session) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// flush waits until everything queued so far is written, the session closes
// or ctx ends.
func (s *session) flush(ctx context.Context) error {
	done := make(chan struct{})
	s.wmu.Lock()
	s.wwaiters = append(s.wwaiters, done)
	s.wurgent = true
	s.wmu.Unlock()
	s.kick()
	select {
	case <-done:
		return nil
	case <-s.closed:
		return errSessionClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeLoop takes every frame queued since its last turn and writes them
// together: under load many frames share one TLS record and one syscall.
func (s *session) writeLoop() {
	defer s.lazyTimer.Stop()
	var spare []byte
	var wdl deadline
	for {
		select {
		case <-s.wake:
		case <-s.closed:
			return
		}
		s.wmu.Lock()
		buf, waiters := s.lazy.moveTo(s.wbuf), s.wwaiters
		s.wbuf, s.wwaiters = spare[:0], nil
		s.wurgent, s.wlazy = false, false
		close(s.wroom)
		s.wroom = make(chan struct{})
		s.wmu.Unlock()
		if len(buf) > 0 {
			if now := time.Now(); wdl.stale(now) {
				_ = s.conn.SetWriteDeadline(wdl.next(now, s.n.cfg.PeerTimeout))
			}
			if _, err := s.conn.Write(buf); err != nil {
				s.close(err)
				return
			}
		}
		for _, w := range waiters {
			close(w)
		}
		if cap(buf) > keptWriteBuffer {
			buf = nil
		}
		spare = buf
	}
}

// deadline spaces out a connection's I/O deadline updates: moving a
// deadline costs a timer update, and a busy link reads and writes many
// thousands of times a second. The deadline is set at most once per
// deadlineRefresh, that much beyond the timeout, so an operation still
// fails no sooner than the timeout after the previous one and at most
// deadlineRefresh later.
type deadline struct{ set time.Time }

// deadlineRefresh is how often a busy link moves its deadlines.
const deadlineRefresh = 20 * time.Millisecond

func (d *deadline) stale(now time.Time) bool { return now.Sub(d.set) >= deadlineRefresh }

func (d *deadline) next(now time.Time, timeout time.Duration) time.Time {
	d.set = now
	return now.Add(timeout + deadlineRefresh)
}

// call sends m and waits for the reply carrying the same id.
func (s *session) call(ctx context.Context, id uint64, m wire.Message) (wire.Message, error) {
	ch := make(chan wire.Message, 1)
	s.calls.Store(id, ch)
	defer s.calls.Delete(id)
	if err := s.send(m); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-s.closed:
		return nil, errSessionClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *session) deliver(id uint64, m wire.Message) {
	if v, ok := s.calls.Load(id); ok {
		select {
		case v.(chan wire.Message) <- m:
		default:
		}
	}
}

func (s *session) heartbeatLoop() {
	t := time.NewTicker(s.n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
			if s.send(wire.Ping{Nonce: randUint64(), Authority: s.n.authorityMsg()}) != nil {
				return
			}
		}
	}
}

func (s *session) readLoop() {
	defer func() { s.n.unregister(s, s.err) }()
	fr := wire.NewFrameReader(bufio.NewReaderSize(s.conn, 64<<10), wire.MaxFrame)
	var md wire.MessageDecoder
	var up wire.Upsert // reused: the common frame under load
	var rdl deadline
	for {
		if now := time.Now(); rdl.stale(now) {
			_ = s.conn.SetReadDeadline(rdl.next(now, s.n.cfg.PeerTimeout))
		}
		b, err := fr.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = errors.New("heartbeat timeout: peer silent for " + s.n.cfg.PeerTimeout.String())
			}
			s.close(err)
			return
		}
		isUpsert, err := md.DecodeUpsert(b, &up)
		var m wire.Message
		if !isUpsert && err == nil {
			m, err = md.Decode(b)
		}
		if err != nil {
			s.n.log.Warn("[mesh-rt transport] malformed frame; closing session", "peer", s.peer, "error", err.Error())
			s.close(err)
			return
		}
		if isUpsert {
			s.handleUpsert(&up)
		} else {
			s.handle(m)
		}
	}
}

// handle applies one message from the peer. Upserts never get here:
// readLoop decodes them in place and calls handleUpsert.
func (s *session) handle(m wire.Message) {
	n := s.n
	switch m := m.(type) {
	case wire.Ping:
		_ = s.send(wire.Pong{Nonce: m.Nonce, Authority: n.authorityMsg()})
		n.observeAuthority(s.peer, m.Authority.Role, m.Authority.Epoch, nil)
		s.heard(m.Authority)
	case wire.Pong:
		s.heard(m.Authority)
		n.observeAuthority(s.peer, m.Authority.Role, m.Authority.Epoch, nil)
		n.peerConfirmed(s.peer, m.Nonce)
	case wire.PeerList:
		for _, name := range m.Names {
			if name == n.self || n.session(name) != nil {
				continue
			}
			if addr, err := nameAddr(name); err == nil {
				n.goRun(func() { _, _ = n.dial(n.ctx, addr, n.cfg.PeerTimeout) })
			}
		}
	case wire.Sync:
		n.reg.RaiseWatermark(m.AttemptWatermark)
		n.observeAuthority(s.peer, m.Authority.Role, m.Authority.Epoch, highestEpoch(m.Records))
		for _, rec := range m.Records {
			n.merge(rec, s.peer)
		}
		s.heard(m.Authority)
		n.everSynced.Store(true)
		s.syncOnce.Do(func() { close(s.synced) })
		n.resynced(s.peer, s.started)
	case wire.Prepare:
		_ = s.send(n.handlePrepare(s.peer, m))
	case wire.PrepareAck:
		s.deliver(m.ID, m)
	case wire.Dispatch:
		_ = s.send(n.handleDispatch(m))
	case wire.DispatchAck:
		s.deliver(m.ID, m)
	case wire.RouteRequest:
		if !n.running.add() {
			_ = s.send(wire.RouteResponse{ID: m.ID, Reason: string(continuity.ReasonShuttingDown)})
			break
		}
		go func() {
			defer n.running.done()
			n.serveRemoteRoute(s, m)
		}()
	case wire.RouteResponse:
		s.deliver(m.ID, m)
	case wire.RouteCancel:
		if v, ok := s.routes.Load(m.ID); ok {
			v.(context.CancelFunc)()
		}
	}
}

// handleUpsert applies one record transition from the peer.
func (s *session) handleUpsert(m *wire.Upsert) {
	n := s.n
	n.reg.RaiseWatermark(m.AttemptWatermark)
	n.observeAuthority(s.peer, m.Authority.Role, m.Authority.Epoch, &m.Record)
	n.merge(m.Record, s.peer)
}

// highestEpoch picks the record a fencing diagnostic should name: one of the
// highest epoch, preferring declared work over route records and startup
// work above all — the recovered work is what an operator looks for.
func highestEpoch(recs []continuity.Record) *continuity.Record {
	rank := func(r *continuity.Record) int {
		switch {
		case r.Kind == continuity.KindRoute:
			return 0
		case strings.HasPrefix(r.RequestKey, continuity.StartupKeyPrefix):
			return 2
		}
		return 1
	}
	var best *continuity.Record
	for i := range recs {
		r := &recs[i]
		if best == nil || r.Epoch > best.Epoch || (r.Epoch == best.Epoch && rank(r) > rank(best)) {
			best = r
		}
	}
	return best
}

// merge folds one peer record into the registry. When the peer's version
// loses to the one kept here, the kept one is sent back: the peer holds on to
// its own until it hears a version it prefers, and nothing else would tell
// it (a node broadcasts a record only when it changes), so the two would
// disagree for good. Both sides choose with one order at any moment, so the
// answer is adopted and the exchange ends there.
func (n *Node) merge(rec continuity.Record, from string) {
	m, err := n.reg.MergeOutcome(rec, from)
	if err != nil {
		n.log.Warn("[mesh-rt continuity] transition=merge_rejected", "remote", from, "request_key", rec.RequestKey, "error", err.Error())
		return
	}
	switch {
	case !m.Changed && !continuity.SameVersion(m.Kept, rec):
		n.broadcast(m.Kept)
	case m.ReplacedOther:
		// The peer's version of another attempt won here. The peer may
		// meanwhile hold a third version (the order of one key's versions
		// changes as an attempt is refused), so it hears what this node
		// now keeps; it answers only if it keeps something else.
		n.broadcast(m.Kept)
	}
}
