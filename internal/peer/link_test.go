package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/wire"
)

// pipeLink is a link whose writer sends into one end of an in-memory
// pipe; the returned function reads the next message from the other end.
func pipeLink(t *testing.T) (*Link, func() wire.Message) {
	t.Helper()
	return pipeLinkOver(t, func(c net.Conn) net.Conn { return c })
}

// pipeLinkOver is pipeLink with the link's side of the pipe wrapped by wrap
// (to count its writes, say).
func pipeLinkOver(t *testing.T, wrap func(net.Conn) net.Conn) (*Link, func() wire.Message) {
	t.Helper()
	a, b := net.Pipe()
	s := New(wrap(a), Config{Peer: "peer@127.0.0.1:1", PeerTimeout: 5 * time.Second}, nil)
	s.lazyDelay = time.Hour // lazy frames wait for an urgent one unless a test shortens this
	done := make(chan struct{})
	go func() { defer close(done); s.writeLoop() }()
	t.Cleanup(func() {
		s.Close(ErrClosed)
		b.Close()
		<-done
	})
	fr := wire.NewFrameReader(b, wire.MaxFrame)
	var md wire.MessageDecoder
	next := func() wire.Message {
		t.Helper()
		_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
		f, err := fr.Next()
		if err != nil {
			t.Fatalf("read frame: %v", err)
		}
		m, err := md.Decode(f)
		if err != nil {
			t.Fatalf("decode frame: %v", err)
		}
		return m
	}
	return s, next
}

func upsertFrame(t *testing.T, key string, phase continuity.Phase) []byte {
	t.Helper()
	m := wire.Upsert{Record: continuity.Record{RequestKey: key, PayloadHash: "h", Phase: phase, Kind: continuity.KindRoute, ReplicationCount: 1}}
	return wire.AppendUpsert(nil, &m)
}

// expect reads one message and checks it is an Upsert of key in phase, or,
// with key "", a Ping carrying nonce.
func expect(t *testing.T, next func() wire.Message, key string, phase continuity.Phase, nonce uint64) {
	t.Helper()
	switch m := next().(type) {
	case wire.Upsert:
		if key == "" || m.Record.RequestKey != key || m.Record.Phase != phase {
			t.Fatalf("got upsert %s %s, want %q %s / ping %d", m.Record.RequestKey, m.Record.Phase, key, phase, nonce)
		}
	case wire.Ping:
		if key != "" || m.Nonce != nonce {
			t.Fatalf("got ping %d, want upsert %q %s / ping %d", m.Nonce, key, phase, nonce)
		}
	default:
		t.Fatalf("unexpected %T", m)
	}
}

func TestLinkLazyTransitionsCoalesceAndKeepOrder(t *testing.T) {
	s, next := pipeLink(t)
	sub, done := continuity.PhaseSubmitted, continuity.PhaseCompleted
	// a's newer transition replaces its queued one and moves behind b; the
	// urgent ping follows every lazy transition queued before it.
	for _, step := range []struct {
		key   string
		phase continuity.Phase
	}{{"a", sub}, {"b", sub}, {"a", done}} {
		if err := s.enqueueFrame(nil, upsertFrame(t, step.key, step.phase), step.key, FrameLazy); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Send(wire.Ping{Nonce: 7}); err != nil {
		t.Fatal(err)
	}
	expect(t, next, "b", sub, 0)
	expect(t, next, "a", done, 0)
	expect(t, next, "", "", 7)

	// An urgent transition of a key drops its queued lazy one; other lazy
	// transitions still go first.
	_ = s.enqueueFrame(nil, upsertFrame(t, "c", sub), "c", FrameLazy)
	_ = s.enqueueFrame(nil, upsertFrame(t, "d", sub), "d", FrameLazy)
	_ = s.enqueueFrame(nil, upsertFrame(t, "c", done), "c", FrameUrgent)
	expect(t, next, "d", sub, 0)
	expect(t, next, "c", done, 0)

	// Lazy transitions alone are written within the lazy delay, nothing
	// else prompting the writer.
	s.wmu.Lock()
	s.lazyDelay = time.Millisecond
	s.wmu.Unlock()
	_ = s.enqueueFrame(nil, upsertFrame(t, "e", sub), "e", FrameLazy)
	expect(t, next, "e", sub, 0)

	// A final transition replaces the queued pending one but is not itself
	// replaced: a later transition of the key follows it.
	s.wmu.Lock()
	s.lazyDelay = time.Hour
	s.wmu.Unlock()
	_ = s.enqueueFrame(nil, upsertFrame(t, "f", sub), "f", FrameLazy)
	_ = s.enqueueFrame(nil, upsertFrame(t, "f", done), "f", FrameLazyLast)
	_ = s.enqueueFrame(nil, upsertFrame(t, "f", continuity.PhaseRejected), "f", FrameLazy)
	if err := s.Send(wire.Ping{Nonce: 9}); err != nil {
		t.Fatal(err)
	}
	expect(t, next, "f", done, 0)
	expect(t, next, "f", continuity.PhaseRejected, 0)
	expect(t, next, "", "", 9)

	// After every turn the queue starts empty: nothing is sent twice.
	if err := s.Send(wire.Ping{Nonce: 8}); err != nil {
		t.Fatal(err)
	}
	expect(t, next, "", "", 8)
}

func TestLinkFlushWritesLazyTransitions(t *testing.T) {
	s, next := pipeLink(t)
	_ = s.enqueueFrame(nil, upsertFrame(t, "a", continuity.PhaseSubmitted), "a", FrameLazy)
	flushed := make(chan error, 1)
	go func() { flushed <- s.Flush(t.Context()) }()
	expect(t, next, "a", continuity.PhaseSubmitted, 0)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
}

// Lazy transitions that fill lazyFlushBytes are written at once, not at
// the lazy delay (an hour here): a busy link's batch stays within the
// buffers it keeps.
func TestLinkWritesAFullLazyBatchAtOnce(t *testing.T) {
	s, next := pipeLink(t)
	pad := strings.Repeat("x", 500)
	key := func(i int) string { return fmt.Sprintf("k%04d-%s", i, pad) }
	frame := len(upsertFrame(t, key(0), continuity.PhaseCompleted)) + 4
	n := (lazyFlushBytes + frame - 1) / frame
	for i := range n {
		if err := s.enqueueFrame(nil, upsertFrame(t, key(i), continuity.PhaseCompleted), key(i), FrameLazyLast); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		expect(t, next, key(i), continuity.PhaseCompleted, 0)
	}
}

// A deadline is moved at most once per deadlineRefresh, and whenever it is
// moved it lies at least the timeout after every operation since the last
// move, so spacing the updates never shortens the timeout.
func TestDeadlineSpacing(t *testing.T) {
	var d deadline
	t0 := time.Now()
	if !d.stale(t0) {
		t.Fatal("a fresh deadline must be set")
	}
	at := d.next(t0, time.Second)
	for _, off := range []time.Duration{0, deadlineRefresh / 2, deadlineRefresh - time.Nanosecond} {
		now := t0.Add(off)
		if d.stale(now) {
			t.Fatalf("moved again after %v", off)
		}
		if at.Before(now.Add(time.Second)) {
			t.Fatalf("deadline %v is less than the timeout after an operation at +%v", at.Sub(t0), off)
		}
	}
	if !d.stale(t0.Add(deadlineRefresh)) {
		t.Fatal("not moved after deadlineRefresh")
	}
}

// countingConn counts the writes made to its connection.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// A frame queued before a call leaves waking the writer to the call: the
// two reach the peer in one write, in queue order. Alone, it is written
// within the lazy delay.
func TestLinkFrameBeforeCallSharesTheCallsWrite(t *testing.T) {
	var c *countingConn
	s, next := pipeLinkOver(t, func(a net.Conn) net.Conn { c = &countingConn{Conn: a}; return c })

	_ = s.enqueueFrame(nil, upsertFrame(t, "a", continuity.PhaseSubmitted), "a", FrameLazy)
	if err := s.Enqueue(upsertFrame(t, "a", continuity.PhaseCompleted), "a", FrameBeforeCall); err != nil {
		t.Fatal(err)
	}
	s.wmu.Lock()
	woken := s.wurgent || len(s.wake) > 0
	s.wmu.Unlock()
	if woken {
		t.Fatal("a frame queued before a call woke the writer")
	}
	p, err := s.Begin(1, wire.AppendHeld(nil, 1, "a", 1))
	if err != nil {
		t.Fatal(err)
	}
	expect(t, next, "a", continuity.PhaseCompleted, 0) // replaced the lazy pending one
	if h, ok := next().(wire.Held); !ok || h.ID != 1 || h.RequestKey != "a" {
		t.Fatalf("want the Held call after the transition, got %#v", h)
	}
	if n := c.writes.Load(); n != 1 {
		t.Fatalf("transition and call took %d writes, want 1", n)
	}
	s.deliver(1, reply{ack: wire.PrepareAck{ID: 1, OK: true}, held: true})
	if ack, err := p.WaitHeldAck(t.Context(), 0); err != nil || !ack.OK || ack.ID != 1 {
		t.Fatalf("WaitHeldAck = %+v, %v", ack, err)
	}

	s.wmu.Lock()
	s.lazyDelay = time.Millisecond
	s.wmu.Unlock()
	if err := s.Enqueue(upsertFrame(t, "b", continuity.PhaseCompleted), "b", FrameBeforeCall); err != nil {
		t.Fatal(err)
	}
	expect(t, next, "b", continuity.PhaseCompleted, 0)
}

// replier answers every Held with a HeldAck through Reply, as the engine's
// handlers do on the reader.
type replier struct {
	recorder
	l     *Link
	woken atomic.Int32 // replies that woke the writer themselves
}

func (r *replier) HandleHeld(m *wire.Held) {
	_ = r.l.Reply(wire.AppendHeldAck(nil, &wire.HeldAck{ID: m.ID, OK: true}))
	r.l.wmu.Lock()
	if r.l.wurgent {
		r.woken.Add(1)
	}
	r.l.wmu.Unlock()
}

// Replies the reader queues for frames that arrived together leave in one
// write; a lone reply leaves before the reader waits for the peer again.
func TestLinkRepliesToOneReadShareAWrite(t *testing.T) {
	a, b := net.Pipe()
	c := &countingConn{Conn: a}
	h := &replier{recorder: recorder{closed: make(chan error, 1)}}
	l := New(c, Config{Peer: "peer@127.0.0.1:1", PeerTimeout: 5 * time.Second, HeartbeatInterval: time.Hour,
		Heartbeat: func() wire.Message { return wire.Ping{} }, Log: slog.New(slog.DiscardHandler)}, h)
	l.lazyDelay = time.Hour // only the reader's flush can send a reply
	h.l = l
	var wg sync.WaitGroup
	l.Start(func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() })
	defer wg.Wait()
	defer l.Close(ErrClosed)
	defer b.Close()

	frame := func(m wire.Message) []byte {
		p := wire.Encode(m)
		return append(binary.LittleEndian.AppendUint32(nil, uint32(len(p))), p...)
	}
	_ = b.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Write(append(append(frame(wire.Held{ID: 1, RequestKey: "a"}), frame(wire.Held{ID: 2, RequestKey: "b"})...),
		frame(wire.Held{ID: 3, RequestKey: "c"})...)); err != nil {
		t.Fatal(err)
	}
	fr := wire.NewFrameReader(b, wire.MaxFrame)
	next := func() wire.HeldAck {
		t.Helper()
		f, err := fr.Next()
		if err != nil {
			t.Fatalf("read reply: %v", err)
		}
		m, err := wire.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		return m.(wire.HeldAck)
	}
	for id := uint64(1); id <= 3; id++ {
		if ack := next(); ack.ID != id {
			t.Fatalf("reply %d, want %d", ack.ID, id)
		}
	}
	if n := c.writes.Load(); n != 1 {
		t.Fatalf("three replies to one read took %d writes, want 1", n)
	}
	if n := h.woken.Load(); n != 0 {
		t.Fatalf("%d replies woke the writer before the reader had read what it had", n)
	}
	if _, err := b.Write(frame(wire.Held{ID: 4, RequestKey: "d"})); err != nil {
		t.Fatal(err)
	}
	if ack := next(); ack.ID != 4 {
		t.Fatalf("reply %d, want 4", ack.ID)
	}
}

// The owner's waits for a PrepareAck and a HeldAck get them from the reader
// unboxed; an answer of the other kind is an error, and Wait still returns
// either as a Message.
func TestLinkDeliversAcksUnboxed(t *testing.T) {
	a, b := net.Pipe()
	h := &recorder{closed: make(chan error, 1)}
	l := New(a, Config{Peer: "peer@127.0.0.1:1", PeerTimeout: 5 * time.Second, HeartbeatInterval: time.Hour,
		Heartbeat: func() wire.Message { return wire.Ping{} }, Log: slog.New(slog.DiscardHandler)}, h)
	var wg sync.WaitGroup
	l.Start(func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() })
	defer wg.Wait()
	defer l.Close(ErrClosed)
	defer b.Close()
	_ = b.SetDeadline(time.Now().Add(5 * time.Second))

	fr := wire.NewFrameReader(b, wire.MaxFrame)
	auth := wire.Authority{Role: "primary", Epoch: 3}
	for _, c := range []struct {
		id     uint64
		answer wire.Message
		wait   string
	}{
		{1, wire.PrepareAck{ID: 1, OK: true, Authority: auth}, "prepare"},
		{2, wire.PrepareAck{ID: 2, Reason: "stale_epoch", Authority: auth}, "prepare"},
		{3, wire.HeldAck{ID: 3, OK: true, Authority: auth}, "held"},
		{4, wire.HeldAck{ID: 4, Reason: "attempt_mismatch"}, "held"},
		{5, wire.HeldAck{ID: 5, OK: true}, "prepare"},
		{6, wire.PrepareAck{ID: 6, OK: true}, "held"},
		{7, wire.HeldAck{ID: 7, OK: true}, "any"},
	} {
		p, err := l.Begin(c.id, wire.AppendHeld(nil, c.id, "k", 1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fr.Next(); err != nil { // the call's frame
			t.Fatal(err)
		}
		enc := wire.Encode(c.answer)
		if _, err := b.Write(append(binary.LittleEndian.AppendUint32(nil, uint32(len(enc))), enc...)); err != nil {
			t.Fatal(err)
		}
		var got any
		switch c.wait {
		case "prepare":
			got, err = p.WaitPrepareAck(t.Context(), 0)
		case "held":
			got, err = p.WaitHeldAck(t.Context(), 0)
		default:
			got, err = p.Wait(t.Context(), 0)
		}
		_, isPrep := c.answer.(wire.PrepareAck)
		if mismatched := (c.wait == "prepare" && !isPrep) || (c.wait == "held" && isPrep); mismatched {
			if !errors.Is(err, errUnexpectedReply) {
				t.Fatalf("call %d: %s wait for %#v: %#v, %v", c.id, c.wait, c.answer, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.answer) {
			t.Fatalf("call %d: %s wait got %#v, %v, want %#v", c.id, c.wait, got, err, c.answer)
		}
	}
}

// sizingConn records the size of every write made to its connection.
type sizingConn struct {
	net.Conn
	mu    sync.Mutex
	sizes []int
}

func (c *sizingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(b))
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// A woken writer lets the goroutines that are ready to run queue their
// frames before it takes the queue: a sender that wakes it and then waits
// (a request waiting for its ack) and a second sender already runnable
// share one write. On one CPU the woken writer would otherwise run first
// and write the first frame alone. The scheduler decides, so the test
// counts rounds: without the writer's yield most rounds take two writes
// (about half under -race, which shuffles the run queue).
func TestLinkWriterLetsReadySendersJoinTheWrite(t *testing.T) {
	var c *sizingConn
	s, next := pipeLinkOver(t, func(a net.Conn) net.Conn { c = &sizingConn{Conn: a}; return c })
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))

	const rounds = 200
	shared := 0
	for i := range rounds {
		c.mu.Lock()
		c.sizes = c.sizes[:0]
		c.mu.Unlock()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = s.Send(wire.Ping{Nonce: uint64(2*i + 1)})
		}()
		if err := s.Send(wire.Ping{Nonce: uint64(2 * i)}); err != nil {
			t.Fatal(err)
		}
		<-done
		got := map[uint64]bool{}
		for range 2 {
			if m, ok := next().(wire.Ping); ok {
				got[m.Nonce] = true
			}
		}
		if !got[uint64(2*i)] || !got[uint64(2*i+1)] {
			t.Fatalf("round %d: got pings %v, want %d and %d", i, got, 2*i, 2*i+1)
		}
		c.mu.Lock()
		if len(c.sizes) == 1 {
			shared++
		}
		c.mu.Unlock()
	}
	if shared < rounds*8/10 {
		t.Fatalf("two ready senders shared a write in %d of %d rounds, want at least %d", shared, rounds, rounds*8/10)
	}
}

// bareLink is a link over one end of a pipe with none of its goroutines
// running: calls queue their requests and wait, and the test plays the
// reader (deliver), the heartbeat (ticked) and the close.
func bareLink(t *testing.T) *Link {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return New(a, Config{Peer: "peer@127.0.0.1:1", PeerTimeout: 5 * time.Second}, nil)
}

// A call's wait ends when the link closes, whether or not a heartbeat's
// tick is waiting in its channel, and a call begun after the close fails.
func TestLinkCallsEndWhenTheLinkCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := bareLink(t)
		ticked, plain, late := begin(t, l, 1), begin(t, l, 2), begin(t, l, 6)
		l.ticked() // only the first waits with a timeout; it has a tick to read
		errs := make(chan error, 3)
		go func() { _, err := ticked.Wait(t.Context(), time.Hour); errs <- err }()
		go func() { _, err := plain.Wait(t.Context(), 0); errs <- err }()
		go func() { _, err := l.Call(t.Context(), 3, wire.Ping{Nonce: 3}); errs <- err }()
		synctest.Wait()
		if len(errs) != 0 {
			t.Fatalf("a wait ended before the link closed: %v", <-errs)
		}
		l.Close(errors.New("test"))
		for range 3 {
			if err := <-errs; !errors.Is(err, ErrClosed) {
				t.Fatalf("wait ended with %v, want ErrClosed", err)
			}
		}
		// late's channel held a tick nobody had read when the link closed.
		if _, err := late.Wait(t.Context(), time.Hour); !errors.Is(err, ErrClosed) {
			t.Fatalf("wait with a tick unread at the close = %v, want ErrClosed", err)
		}
		if _, err := l.Begin(4, wire.AppendHeld(nil, 4, "k", 1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Begin after the close = %v, want ErrClosed", err)
		}
		if ch := l.await(5, false); len(ch) != 1 || (<-ch).signal != signalClosed {
			t.Fatal("a call registered after the close is not told")
		}
	})
}

// A wait with a timeout ends at the first heartbeat past it, not before,
// and a reply that arrives after a tick is still returned.
func TestLinkCallTimeoutChecksAtHeartbeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := bareLink(t)
		p := begin(t, l, 1)
		errs := make(chan error, 1)
		go func() { _, err := p.Wait(t.Context(), 100*time.Millisecond); errs <- err }()
		synctest.Wait()
		time.Sleep(60 * time.Millisecond)
		l.ticked()
		synctest.Wait()
		if len(errs) != 0 {
			t.Fatalf("wait ended at a tick before its timeout: %v", <-errs)
		}
		time.Sleep(60 * time.Millisecond)
		l.ticked()
		if err := <-errs; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("wait = %v, want context.DeadlineExceeded", err)
		}

		q := begin(t, l, 2)
		l.ticked()
		l.deliver(2, reply{ack: wire.PrepareAck{ID: 2, OK: true}})
		if ack, err := q.WaitPrepareAck(t.Context(), time.Hour); err != nil || ack.ID != 2 || !ack.OK {
			t.Fatalf("WaitPrepareAck after a tick = %+v, %v", ack, err)
		}
	})
}

func begin(t *testing.T, l *Link, id uint64) Pending {
	t.Helper()
	p, err := l.Begin(id, wire.AppendHeld(nil, id, "k", 1))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
