package peer

import (
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/wire"
)

// recorder is a Handler noting what it was handed, in order.
type recorder struct {
	mu     sync.Mutex
	got    []string
	closed chan error
}

func (r *recorder) note(s string) { r.mu.Lock(); r.got = append(r.got, s); r.mu.Unlock() }

func (r *recorder) HandleUpsert(m *wire.Upsert) { r.note("upsert " + m.Record.RequestKey) }

func (r *recorder) HandlePrepare(m *wire.Prepare) { r.note("prepare " + m.Record.RequestKey) }

func (r *recorder) HandleHeld(m *wire.Held) { r.note("held " + m.RequestKey) }

func (r *recorder) Handle(m wire.Message) {
	if _, ok := m.(wire.Pong); ok {
		r.note("pong")
		return
	}
	r.note("other")
}

func (r *recorder) LinkClosed(cause error) { r.closed <- cause }

// The reader hands upserts and other messages to the Handler in link order,
// a reply only to the Call waiting for it, and reports the close once.
func TestLinkHandsFramesToHandler(t *testing.T) {
	a, b := net.Pipe()
	h := &recorder{closed: make(chan error, 2)}
	l := New(a, Config{Peer: "peer@127.0.0.1:1", PeerTimeout: 5 * time.Second, HeartbeatInterval: time.Hour,
		Heartbeat: func() wire.Message { return wire.Ping{} }, Log: slog.New(slog.DiscardHandler)}, h)
	var wg sync.WaitGroup
	l.Start(func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() })
	defer wg.Wait()
	defer l.Close(ErrClosed)

	type result struct {
		m   wire.Message
		err error
	}
	replied := make(chan result, 1)
	go func() {
		m, err := l.Call(t.Context(), 42, wire.Prepare{ID: 42})
		replied <- result{m, err}
	}()
	_ = b.SetDeadline(time.Now().Add(5 * time.Second))
	f, err := wire.ReadFrame(b, wire.MaxFrame)
	if err != nil {
		t.Fatalf("read the call: %v", err)
	}
	var md wire.MessageDecoder
	if m, err := md.Decode(f); err != nil {
		t.Fatalf("decode the call: %v", err)
	} else if p, ok := m.(wire.Prepare); !ok || p.ID != 42 {
		t.Fatalf("the call sent %#v, want a Prepare with id 42", m)
	}
	for _, m := range []wire.Message{
		wire.Upsert{Record: continuity.Record{RequestKey: "k1", PayloadHash: "h", Phase: continuity.PhaseSubmitted}},
		wire.Pong{Nonce: 5},
		wire.Prepare{ID: 7, Record: continuity.Record{RequestKey: "k3", PayloadHash: "h", Phase: continuity.PhaseSubmitted}},
		wire.PrepareAck{ID: 42, OK: true},
		wire.Upsert{Record: continuity.Record{RequestKey: "k2", PayloadHash: "h", Phase: continuity.PhaseSubmitted}},
		wire.Held{ID: 8, RequestKey: "k2", Attempt: 1},
		wire.Held{ID: 9, RequestKey: "k4", Attempt: 1},
	} {
		if err := wire.WriteMessage(b, m); err != nil {
			t.Fatalf("write %T: %v", m, err)
		}
	}
	r := <-replied
	if ack, ok := r.m.(wire.PrepareAck); r.err != nil || !ok || ack.ID != 42 || !ack.OK {
		t.Fatalf("Call = %#v, %v; want the PrepareAck with id 42", r.m, r.err)
	}
	b.Close()
	select {
	case cause := <-h.closed:
		if cause == nil {
			t.Fatal("LinkClosed without a cause")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LinkClosed not called after the peer closed")
	}
	h.mu.Lock()
	got := append([]string(nil), h.got...)
	h.mu.Unlock()
	want := []string{"upsert k1", "pong", "prepare k3", "upsert k2", "held k2", "held k4"}
	if len(got) != len(want) {
		t.Fatalf("handler got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("handler got %q, want %q", got, want)
		}
	}
	if !l.IsClosed() {
		t.Fatal("link not closed after its reader stopped")
	}
	select {
	case <-h.closed:
		t.Fatal("LinkClosed called twice")
	default:
	}
}
