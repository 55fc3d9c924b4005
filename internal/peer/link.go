package peer

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	"meshgo.dev/mesh/internal/wire"
)

// ErrClosed is returned by a send or call on a closed link.
var ErrClosed = errors.New("cluster session closed")

// Handler receives what a link decodes from its peer. Its methods run on
// the link's reader goroutine, one frame at a time in link order, so a
// handler that blocks stops the link reading; work that may wait goes to
// its own goroutine. Replies to Call never reach it.
type Handler interface {
	// HandleUpsert applies one record transition. m is reused for the
	// next frame once the method returns.
	HandleUpsert(m *wire.Upsert)
	// HandlePrepare applies a Prepare (a record to mirror), likewise
	// reused once the method returns.
	HandlePrepare(m *wire.Prepare)
	// HandleHeld answers a Held call, likewise reused.
	HandleHeld(m *wire.Held)
	// Handle applies any other message.
	Handle(m wire.Message)
	// LinkClosed is called once, after the reader stopped, with why the
	// link closed.
	LinkClosed(cause error)
}

// Config is what a link needs from its owner.
type Config struct {
	Peer     string // the peer's node name
	Outgoing bool   // this side dialed
	// PeerTimeout is how long the peer may stay silent before the link
	// closes, and how long a write may block.
	PeerTimeout time.Duration
	// HeartbeatInterval is how often Heartbeat's message is sent.
	HeartbeatInterval time.Duration
	Heartbeat         func() wire.Message
	Log               *slog.Logger
}

// Link is an authenticated connection to one peer. One goroutine reads and
// hands frames to the Handler in order; one goroutine writes, coalescing
// every frame queued meanwhile into a single buffered flush (one TLS record
// and one syscall for many frames under load); a third sends heartbeats.
// Any frame counts as a sign of life: a peer silent for the peer timeout
// closes the link.
type Link struct {
	cfg  Config
	h    Handler
	peer string
	conn net.Conn

	// Outgoing frames, in send order, shared by every sender and writeLoop.
	wmu       sync.Mutex
	wbuf      []byte          // encoded frames writeLoop has not taken yet
	lazy      lazyRecords     // record transitions queued after all of wbuf
	wurgent   bool            // wbuf holds a frame that must go out now
	wreply    bool            // wbuf holds a reply the reader has not flushed yet (Reply)
	wlazy     bool            // a lazy flush is scheduled
	wwaiters  []chan struct{} // closed once what was queued before them is written
	wroom     chan struct{}   // made by a sender waiting for room; closed (and dropped) when writeLoop takes wbuf
	wake      chan struct{}   // capacity 1: writeLoop has something to do
	lazyDelay time.Duration   // LazyFlushDelay, but for tests
	lazyTimer *time.Timer

	closed    chan struct{}
	closeOnce sync.Once
	err       error // why the link closed; set before closed is closed

	callMu    sync.Mutex
	calls     map[uint64]call // guarded by callMu: the call waiting for each reply id
	freeCalls []chan reply    // guarded by callMu: reply channels of finished calls, empty
	callsDone bool            // guarded by callMu: the link closed and told every call
}

// call is a registered call: the channel its reply arrives on and whether
// its waiter wants the heartbeat's tick (it has a timeout).
type call struct {
	ch    chan reply
	timed bool
}

// New wraps conn, already authenticated, as a link handing what it reads to
// h. Nothing runs until Start.
func New(conn net.Conn, cfg Config, h Handler) *Link {
	l := &Link{cfg: cfg, h: h, peer: cfg.Peer, conn: conn,
		closed: make(chan struct{}), wake: make(chan struct{}, 1),
		lazyDelay: LazyFlushDelay}
	l.lazyTimer = time.AfterFunc(time.Hour, l.kick)
	l.lazyTimer.Stop()
	return l
}

// Start runs the link's writer, reader and heartbeat, each through goRun.
func (l *Link) Start(goRun func(func())) {
	goRun(l.writeLoop)
	goRun(l.readLoop)
	goRun(l.heartbeatLoop)
}

// Peer returns the peer's node name.
func (l *Link) Peer() string { return l.peer }

// Outgoing reports whether this side dialed.
func (l *Link) Outgoing() bool { return l.cfg.Outgoing }

// Done is closed when the link closes.
func (l *Link) Done() <-chan struct{} { return l.closed }

// IsClosed reports whether the link closed.
func (l *Link) IsClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// Close closes the link for cause, at once; later calls do nothing. It
// closes the transport under TLS rather than the TLS connection:
// tls.Conn.Close first writes a close_notify alert, which waits up to 5 s for
// a peer that does not read (cut off, frozen), while the reader that saw the
// peer fall silent waits here before the loss is handled, and the engine's
// crash path closes links under its own lock. The peer reads EOF at a record
// boundary either way.
func (l *Link) Close(cause error) {
	l.closeOnce.Do(func() {
		l.err = cause
		close(l.closed)
		if tc, ok := l.conn.(*tls.Conn); ok {
			tc.NetConn().Close()
		} else {
			l.conn.Close()
		}
		l.signalCalls(signalClosed, false)
	})
}

// Outgoing queue bounds.
const (
	// LazyFlushDelay is how long a frame nobody waits for may sit in the
	// queue before it is written; anything urgent writes it sooner.
	LazyFlushDelay = 10 * time.Millisecond
	// maxQueuedBytes bounds the encoded frames waiting for the writer; a
	// sender finding more waits (backpressure) rather than grow memory.
	maxQueuedBytes = 8 << 20
	// keptWriteBuffer is the largest buffer the writer keeps for reuse.
	keptWriteBuffer = 256 << 10
	// lazyFlushBytes is how much lazy frames may queue before the writer
	// is woken without waiting for LazyFlushDelay: well under
	// keptWriteBuffer, so a busy link's batches fit the buffers it keeps,
	// and still several TLS records per write.
	lazyFlushBytes = 64 << 10
)

// Send queues one message to be written at once. It fails only when the
// link is closed; a write error later closes the link, which every caller
// waiting for a reply observes.
func (l *Link) Send(m wire.Message) error { return l.enqueueFrame(m, nil, "", FrameUrgent) }

// Reply queues msg, an encoded reply (without its length prefix), from
// the Handler's methods, which run on the link's reader: it is written
// with every other reply the reader queues before it next waits for the
// peer, so the answers to frames that arrived together leave in one write
// (and wake the peer once) rather than one write each. Only the reader may
// call it. msg is copied.
func (l *Link) Reply(msg []byte) error { return l.enqueueFrame(nil, msg, "", frameReply) }

// SendEncoded is Send for a message already encoded (without its length
// prefix), which it copies: replies on the hot path are encoded into a
// caller's buffer instead of being boxed in a Message. Record transitions
// go through Enqueue.
func (l *Link) SendEncoded(msg []byte) error { return l.enqueueFrame(nil, msg, "", frameReply) }

// Enqueue queues msg, one message already encoded (without its length
// prefix), as a frame of the given kind; key names the record a lazy frame
// carries a transition of. Many links can share one encoding.
func (l *Link) Enqueue(msg []byte, key string, kind FrameKind) error {
	return l.enqueueFrame(nil, msg, key, kind)
}

// FrameKind says when a queued frame is written.
type FrameKind uint8

const (
	// FrameUrgent wakes the writer at once.
	FrameUrgent FrameKind = iota
	// FrameLazy is a record transition that may wait up to LazyFlushDelay;
	// a later transition of the same key replaces it while it waits.
	FrameLazy
	// FrameLazyLast is FrameLazy for a final (terminal) transition: nothing
	// is expected to replace it, so it is not indexed for replacement.
	FrameLazyLast
	// FrameBeforeCall is an urgent frame that its sender follows at once
	// with a call (Begin, Call) on the same link: it joins the queue as an
	// urgent frame does but leaves waking the writer to the call, so the two
	// go out in one write and reach the peer with one wake-up. Should no
	// call follow, it is written within LazyFlushDelay.
	FrameBeforeCall
	// frameReply is a reply queued by the reader (Reply): the reader wakes
	// the writer before it waits for the peer (flushReplies).
	frameReply
)

// lazyRecords holds encoded record transitions that may wait up to
// LazyFlushDelay, at most one per request key: queuing a newer transition of
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
// which must then be set) waits up to LazyFlushDelay; an urgent one wakes
// the writer now. A frame carrying a transition of key replaces a queued
// lazy one of the same key.
//
// Order on the link is the order of the calls, except that a lazy frame
// replaced by a newer one is not sent at all: before any frame that is not
// lazy joins the queue, every lazy frame queued so far is moved ahead of it.
func (l *Link) enqueueFrame(m wire.Message, msg []byte, key string, kind FrameKind) error {
	lazy := kind == FrameLazy || kind == FrameLazyLast
	l.wmu.Lock()
	for len(l.wbuf)+l.lazy.size() > maxQueuedBytes {
		if l.wroom == nil {
			l.wroom = make(chan struct{})
		}
		room := l.wroom
		l.wmu.Unlock()
		select {
		case <-room:
		case <-l.closed:
			return ErrClosed
		}
		l.wmu.Lock()
	}
	if l.IsClosed() {
		l.wmu.Unlock()
		return ErrClosed
	}
	dst := &l.wbuf
	if lazy {
		dst = &l.lazy.buf
	} else {
		if key != "" {
			l.lazy.drop(key)
		}
		l.wbuf = l.lazy.moveTo(l.wbuf)
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
		l.wmu.Unlock()
		return fmt.Errorf("send to %s: frame of %d bytes exceeds the cap", l.peer, size)
	}
	binary.LittleEndian.PutUint32((*dst)[start:], uint32(size))
	kick := false
	switch {
	case lazy:
		l.lazy.add(key, start, kind == FrameLazy)
		if l.lazy.size() >= lazyFlushBytes {
			// A full batch leaves now rather than at the delay: under
			// load the queue would otherwise outgrow the buffers the
			// link keeps and be allocated anew, by doubling, every batch.
			kick = !l.wurgent
			l.wurgent = true
			break
		}
		fallthrough
	case kind == FrameBeforeCall, kind == frameReply:
		if kind == frameReply {
			l.wreply = true
		}
		if !l.wlazy && !l.wurgent {
			l.wlazy = true
			l.lazyTimer.Reset(l.lazyDelay)
		}
	default:
		kick = !l.wurgent
		l.wurgent = true
	}
	l.wmu.Unlock()
	if kick {
		l.kick()
	}
	return nil
}

// flushReplies wakes the writer for the replies the reader queued, if any.
func (l *Link) flushReplies() {
	l.wmu.Lock()
	kick := l.wreply && !l.wurgent
	if l.wreply {
		l.wurgent = true
	}
	l.wmu.Unlock()
	if kick {
		l.kick()
	}
}

// kick wakes the writer.
func (l *Link) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Flush waits until everything queued so far is written, the link closes
// or ctx ends.
func (l *Link) Flush(ctx context.Context) error {
	done := make(chan struct{})
	l.wmu.Lock()
	l.wwaiters = append(l.wwaiters, done)
	l.wurgent = true
	l.wmu.Unlock()
	l.kick()
	select {
	case <-done:
		return nil
	case <-l.closed:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeLoop takes every frame queued since its last turn and writes them
// together: under load many frames share one TLS record and one syscall.
func (l *Link) writeLoop() {
	defer l.lazyTimer.Stop()
	var spare []byte
	var wdl deadline
	for {
		select {
		case <-l.wake:
		case <-l.closed:
			return
		}
		// Let the goroutines that are ready to run queue their frames
		// first: a writer that wrote at once would take only the frame
		// that woke it, while the senders ready behind it (requests whose
		// HTTP reads completed together, a request's next step) would each
		// cost another write, TLS record and wake-up of the peer. The
		// yield costs next to nothing when nobody else is ready.
		runtime.Gosched()
		l.wmu.Lock()
		buf, waiters := l.lazy.moveTo(l.wbuf), l.wwaiters
		l.wbuf, l.wwaiters = spare[:0], nil
		l.wurgent, l.wlazy, l.wreply = false, false, false
		if l.wroom != nil { // a sender waits for room: only then is there a channel to close
			close(l.wroom)
			l.wroom = nil
		}
		l.wmu.Unlock()
		if len(buf) > 0 {
			if now := time.Now(); wdl.stale(now) {
				_ = l.conn.SetWriteDeadline(wdl.next(now, l.cfg.PeerTimeout))
			}
			if _, err := l.conn.Write(buf); err != nil {
				l.Close(err)
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

// Call sends m and waits for the reply carrying the same id.
func (l *Link) Call(ctx context.Context, id uint64, m wire.Message) (wire.Message, error) {
	return l.call(ctx, id, m, nil)
}

// CallEncoded is Call for a message already encoded (without its length
// prefix), which it copies before it returns: the hot path encodes a request
// into a reused buffer instead of boxing it in a Message.
func (l *Link) CallEncoded(ctx context.Context, id uint64, msg []byte) (wire.Message, error) {
	return l.call(ctx, id, nil, msg)
}

// call sends m, or msg when m is nil, and waits for the reply carrying id.
func (l *Link) call(ctx context.Context, id uint64, m wire.Message, msg []byte) (wire.Message, error) {
	ch := l.await(id, false)
	if err := l.enqueueFrame(m, msg, "", FrameUrgent); err != nil {
		l.forget(id, ch)
		return nil, err
	}
	r, err := Pending{l: l, id: id, ch: ch}.wait(ctx, 0)
	if err != nil {
		return nil, err
	}
	return r.message(), nil
}

// reply is what a call's channel carries: the answer to a Prepare or a
// Held, unboxed (one of each per count-2 request), any other message, or a
// signal from the link (a heartbeat's tick, the link's close).
type reply struct {
	m      wire.Message // nil for an acknowledgement
	ack    wire.PrepareAck
	held   bool // ack is a HeldAck
	signal signal
}

// signal is what a reply carries from the link rather than the peer. The
// link tells each waiting call through its own channel instead of having
// every waiter also select on shared channels (the link's closed channel, a
// tick), whose locks all of them would contend for under load.
type signal uint8

const (
	signalNone   signal = iota
	signalTick          // a heartbeat passed: time to check the call's timeout
	signalClosed        // the link closed: no reply will come
)

// message returns r as a Message.
func (r reply) message() wire.Message {
	switch {
	case r.m != nil:
		return r.m
	case r.held:
		return wire.HeldAck(r.ack)
	}
	return r.ack
}

// errUnexpectedReply is the error of a WaitPrepareAck or WaitHeldAck whose
// call was answered with another message.
var errUnexpectedReply = errors.New("peer answered with an unexpected message")

// Pending is a call whose request is queued and whose reply is awaited with
// Wait: the caller does other work (its own fsync) while the request
// travels, without a goroutine.
type Pending struct {
	l  *Link
	id uint64
	ch chan reply
}

// Begin queues msg, the encoded request (without its length prefix) of a
// call with id, and returns at once; Wait collects the reply. Every Pending
// that Begin returned without an error must be waited for exactly once,
// which forgets the call. msg is copied before Begin returns.
func (l *Link) Begin(id uint64, msg []byte) (Pending, error) {
	ch := l.await(id, true)
	if err := l.enqueueFrame(nil, msg, "", FrameUrgent); err != nil {
		l.forget(id, ch)
		return Pending{}, err
	}
	return Pending{l: l, id: id, ch: ch}, nil
}

// Wait waits for the reply of the call p, until the link closes
// (ErrClosed), ctx ends (its error) or, when timeout is positive, timeout
// has passed (context.DeadlineExceeded). The timeout is checked at each
// heartbeat of the link, so it ends up to a heartbeat interval late; a wait
// costs no timer of its own.
func (p Pending) Wait(ctx context.Context, timeout time.Duration) (wire.Message, error) {
	r, err := p.wait(ctx, timeout)
	if err != nil {
		return nil, err
	}
	return r.message(), nil
}

// WaitPrepareAck is Wait for a call answered with a PrepareAck, which it
// returns without boxing it.
func (p Pending) WaitPrepareAck(ctx context.Context, timeout time.Duration) (wire.PrepareAck, error) {
	r, err := p.wait(ctx, timeout)
	switch {
	case err != nil:
		return wire.PrepareAck{}, err
	case r.m == nil && !r.held:
		return r.ack, nil
	}
	if a, ok := r.m.(wire.PrepareAck); ok {
		return a, nil
	}
	return wire.PrepareAck{}, errUnexpectedReply
}

// WaitHeldAck is WaitPrepareAck for a HeldAck.
func (p Pending) WaitHeldAck(ctx context.Context, timeout time.Duration) (wire.HeldAck, error) {
	r, err := p.wait(ctx, timeout)
	switch {
	case err != nil:
		return wire.HeldAck{}, err
	case r.m == nil && r.held:
		return wire.HeldAck(r.ack), nil
	}
	if a, ok := r.m.(wire.HeldAck); ok {
		return a, nil
	}
	return wire.HeldAck{}, errUnexpectedReply
}

func (p Pending) wait(ctx context.Context, timeout time.Duration) (reply, error) {
	defer p.l.forget(p.id, p.ch)
	var start time.Time
	if timeout > 0 {
		start = time.Now()
	}
	for {
		select {
		case r := <-p.ch:
			switch r.signal {
			case signalNone:
				return r, nil
			case signalClosed:
				return reply{}, ErrClosed
			}
			if timeout > 0 && time.Since(start) >= timeout {
				return reply{}, context.DeadlineExceeded
			}
		case <-ctx.Done():
			return reply{}, ctx.Err()
		}
	}
}

// signalCalls sends sig to every registered call (with timedOnly, to the
// calls with a timeout). A tick goes only to an empty channel: a waiter
// with something to read looks at its timeout again anyway. A close goes
// to every channel with room (one holding a tick, say); one that is full
// holds a reply, which the waiter takes. A close is final: calls
// registered later are told at once.
func (l *Link) signalCalls(sig signal, timedOnly bool) {
	l.callMu.Lock()
	defer l.callMu.Unlock()
	if sig == signalClosed {
		l.callsDone = true
	}
	for _, c := range l.calls {
		if timedOnly && !c.timed {
			continue
		}
		if n := len(c.ch); n == 0 || (sig == signalClosed && n < cap(c.ch)) {
			c.ch <- reply{signal: sig} // room, and only senders holding callMu fill it
		}
	}
}

// ticked tells the calls with a timeout that a heartbeat passed.
func (l *Link) ticked() { l.signalCalls(signalTick, true) }

// maxFreeCalls bounds the reply channels a link keeps for reuse.
const maxFreeCalls = 64

// await registers a call with id and returns the channel its reply will
// arrive on; forget must follow. timed asks for the heartbeat's ticks (the
// waiter has a timeout). The link reuses the channels of finished calls:
// two calls per count-2 request would otherwise make two channels (and a
// map entry each). They are the link's own, not a process-wide pool's, so
// a link made in a testing/synctest bubble only ever waits on channels of
// that bubble.
//
// A channel holds two: a tick is sent only to an empty channel, so the
// reply always finds room, unless the link closed meanwhile.
func (l *Link) await(id uint64, timed bool) chan reply {
	l.callMu.Lock()
	var ch chan reply
	if n := len(l.freeCalls); n > 0 {
		ch, l.freeCalls = l.freeCalls[n-1], l.freeCalls[:n-1]
	} else {
		ch = make(chan reply, 2)
	}
	if l.calls == nil {
		l.calls = map[uint64]call{}
	}
	l.calls[id] = call{ch: ch, timed: timed}
	if l.callsDone {
		ch <- reply{signal: signalClosed}
	}
	l.callMu.Unlock()
	return ch
}

// forget ends the call with id. deliver and signalCalls send only under
// callMu to a registered call, so once the id is gone nothing more can
// arrive: what came too late is drained and ch is reused empty.
func (l *Link) forget(id uint64, ch chan reply) {
	l.callMu.Lock()
	delete(l.calls, id)
	for len(ch) > 0 {
		<-ch
	}
	if len(l.freeCalls) < maxFreeCalls {
		l.freeCalls = append(l.freeCalls, ch)
	}
	l.callMu.Unlock()
}

func (l *Link) deliver(id uint64, r reply) {
	l.callMu.Lock()
	if c, ok := l.calls[id]; ok {
		select {
		case c.ch <- r:
		default:
		}
	}
	l.callMu.Unlock()
}

func (l *Link) heartbeatLoop() {
	t := time.NewTicker(l.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-l.closed:
			return
		case <-t.C:
			l.ticked()
			if l.Send(l.cfg.Heartbeat()) != nil {
				return
			}
		}
	}
}

// readLoop decodes frames in order and hands them to the handler, except
// replies, which go to the Call waiting for them.
func (l *Link) readLoop() {
	defer func() { l.h.LinkClosed(l.err) }()
	br := bufio.NewReaderSize(l.conn, 64<<10)
	fr := wire.NewFrameReader(br, wire.MaxFrame)
	var md wire.MessageDecoder
	var up wire.Upsert      // reused: the common frame under load
	var prep wire.Prepare   // reused: one per count-2 request on its replica
	var held wire.Held      // likewise
	var ack wire.PrepareAck // reused: a PrepareAck's or HeldAck's fields, on the owner
	var rdl deadline
	for {
		if !frameBuffered(br) {
			l.flushReplies() // the next read may wait for the peer
			// Only a read that may reach the connection needs the
			// deadline; a frame already buffered costs no clock read.
			if now := time.Now(); rdl.stale(now) {
				_ = l.conn.SetReadDeadline(rdl.next(now, l.cfg.PeerTimeout))
			}
		}
		b, err := fr.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = errors.New("heartbeat timeout: peer silent for " + l.cfg.PeerTimeout.String())
			}
			l.Close(err)
			return
		}
		isUpsert, err := md.DecodeUpsert(b, &up)
		isPrepare, isHeld := false, false
		if !isUpsert && err == nil {
			isPrepare, err = md.DecodePrepare(b, &prep)
		}
		if !isUpsert && !isPrepare && err == nil {
			// A Held follows the Upsert of the completion it asks about.
			isHeld, err = md.DecodeHeld(b, &held, up.Record.RequestKey)
		}
		isPrepareAck, isHeldAck := false, false
		if !isUpsert && !isPrepare && !isHeld && err == nil {
			isPrepareAck, isHeldAck, err = md.DecodeAck(b, &ack)
		}
		var m wire.Message
		if !isUpsert && !isPrepare && !isHeld && !isPrepareAck && !isHeldAck && err == nil {
			m, err = md.Decode(b)
		}
		if err != nil {
			l.cfg.Log.Warn("[mesh-rt transport] malformed frame; closing session", "peer", l.peer, "error", err.Error())
			l.Close(err)
			return
		}
		if isUpsert {
			l.h.HandleUpsert(&up)
			continue
		}
		if isPrepare {
			l.h.HandlePrepare(&prep)
			continue
		}
		if isHeld {
			l.h.HandleHeld(&held)
			continue
		}
		if isPrepareAck || isHeldAck {
			l.deliver(ack.ID, reply{ack: ack, held: isHeldAck})
			continue
		}
		switch r := m.(type) {
		case wire.DispatchAck:
			l.deliver(r.ID, reply{m: r})
		case wire.RouteResponse:
			l.deliver(r.ID, reply{m: r})
		case wire.HandoverAck:
			l.deliver(r.ID, reply{m: r})
		default:
			l.h.Handle(m)
		}
	}
}

// frameBuffered reports whether br holds the whole of the next frame, so
// reading it cannot wait for the peer.
func frameBuffered(br *bufio.Reader) bool {
	n := br.Buffered()
	if n < 4 {
		return false
	}
	hdr, _ := br.Peek(4) // buffered: does not read
	return uint64(n-4) >= uint64(binary.LittleEndian.Uint32(hdr))
}
