package cluster

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// fakeClock is a settable clock for admission.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time        { return c.t }
func (c *fakeClock) add(d time.Duration)   { c.t = c.t.Add(d) }
func tcpAddr(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }

func TestAdmissionBoundsPerSource(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	a := newAdmission(clock.now)
	var held []*ticket
	for i := range maxPendingPerSource {
		tk, why := a.admit(tcpAddr("10.0.0.1", 1000+i))
		if why != "" {
			t.Fatalf("connection %d refused: %s", i, why)
		}
		held = append(held, tk)
	}
	if _, why := a.admit(tcpAddr("10.0.0.1", 2000)); why != reasonSourceLimit {
		t.Fatalf("connection %d from one source: %q, want %s", maxPendingPerSource+1, why, reasonSourceLimit)
	}
	// Another source is unaffected; so is the same one once a slot frees.
	if _, why := a.admit(tcpAddr("10.0.0.2", 1)); why != "" {
		t.Fatalf("another source refused: %s", why)
	}
	held[0].done(true)
	if _, why := a.admit(tcpAddr("10.0.0.1", 2001)); why != "" {
		t.Fatalf("freed slot refused: %s", why)
	}
	// IPv6 sources are grouped by /64.
	for i := range maxPendingPerSource {
		if _, why := a.admit(tcpAddr(fmt.Sprintf("2001:db8::%x", i+1), 1)); why != "" {
			t.Fatalf("v6 connection %d refused: %s", i, why)
		}
	}
	if _, why := a.admit(tcpAddr("2001:db8::ffff:1", 1)); why != reasonSourceLimit {
		t.Fatalf("v6 /64 over its limit: %q", why)
	}
}

func TestAdmissionBoundsTotalWithReserveForTrustedSources(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	a := newAdmission(clock.now)
	// Three sources authenticated before: they are trusted.
	trusted := []string{"10.9.9.9", "10.9.9.8", "10.9.9.7"}
	for _, ip := range trusted {
		tk, _ := a.admit(tcpAddr(ip, 1))
		tk.done(true)
	}

	for i := range maxPendingHandshakes {
		ip := net.IPv4(10, 1, byte(i/250), byte(1+i%250)).String()
		if _, why := a.admit(tcpAddr(ip, 1)); why != "" {
			t.Fatalf("connection %d refused below the total: %s", i, why)
		}
	}
	if _, why := a.admit(tcpAddr("10.2.0.1", 1)); why != reasonTotalLimit {
		t.Fatalf("over the total: %q, want %s", why, reasonTotalLimit)
	}
	// Trusted sources still get in, through the reserve, up to its size.
	var reserved []*ticket
	for i := range reservedHandshakes {
		tk, why := a.admit(tcpAddr(trusted[i/maxPendingPerSource], 100+i))
		if why != "" {
			t.Fatalf("trusted connection %d refused: %s", i, why)
		}
		reserved = append(reserved, tk)
	}
	if _, why := a.admit(tcpAddr(trusted[2], 999)); why != reasonTotalLimit {
		t.Fatalf("past the reserve: %q, want %s", why, reasonTotalLimit)
	}
	for _, tk := range reserved {
		tk.done(true)
	}
	// Trust expires.
	clock.add(trustedFor + time.Second)
	if _, why := a.admit(tcpAddr(trusted[0], 1)); why != reasonTotalLimit {
		t.Fatalf("trust did not expire: %q", why)
	}
}

func TestAdmissionRateLimitsFailedHandshakes(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	a := newAdmission(clock.now)
	guesser, other := tcpAddr("10.0.0.66", 1), tcpAddr("10.0.0.7", 1)
	for i := range failureBurst {
		tk, why := a.admit(guesser)
		if why != "" {
			t.Fatalf("guess %d refused: %s", i, why)
		}
		tk.done(false)
	}
	if _, why := a.admit(guesser); why != reasonRateLimited {
		t.Fatalf("guess %d: %q, want %s", failureBurst+1, why, reasonRateLimited)
	}
	if tk, why := a.admit(other); why != "" {
		t.Fatalf("another source is rate limited too: %s", why)
	} else {
		tk.done(true)
	}
	// One more guess per refill interval, no more.
	clock.add(failureRefill)
	tk, why := a.admit(guesser)
	if why != "" {
		t.Fatalf("after a refill interval: %s", why)
	}
	tk.done(false)
	if _, why := a.admit(guesser); why != reasonRateLimited {
		t.Fatalf("second guess in one interval: %q", why)
	}
	// Sixty seconds of guessing earns at most sixty guesses.
	guesses := 0
	for range 600 {
		clock.add(failureRefill / 10)
		if tk, why := a.admit(guesser); why == "" {
			guesses++
			tk.done(false)
		}
	}
	if guesses > 61 {
		t.Fatalf("%d guesses in 60s, want at most about one a second", guesses)
	}
}

func TestAdmissionForgetsIdleSourcesAndStaysBounded(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	a := newAdmission(clock.now)
	for i := range 3 * maxTrackedSources {
		ip := net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String()
		tk, why := a.admit(tcpAddr(ip, 1))
		if why != "" {
			t.Fatalf("source %d refused: %s", i, why)
		}
		tk.done(false) // each failure is remembered
		if len(a.sources) > maxTrackedSources {
			t.Fatalf("%d sources tracked, bound %d", len(a.sources), maxTrackedSources)
		}
	}
	clock.add(failureBurst * failureRefill)
	tk, _ := a.admit(tcpAddr("10.200.0.1", 1))
	tk.done(true)
	clock.add(trustedFor + time.Second)
	tk, _ = a.admit(tcpAddr("10.200.0.1", 1))
	tk.done(true)
	if a.pending != 0 || a.reserved != 0 {
		t.Fatalf("pending %d reserved %d after every ticket is done", a.pending, a.reserved)
	}
}

// A flood of failing handshakes from more sources than the table holds does
// not push out a trusted source (the peer): it keeps its trust, and with it
// the reserved slots the flood cannot take.
func TestAdmissionFloodKeepsTrustedSource(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	a := newAdmission(clock.now)
	peer := tcpAddr("10.250.0.1", 1)
	tk, why := a.admit(peer)
	if why != "" {
		t.Fatal(why)
	}
	tk.done(true)
	for i := range 3 * maxTrackedSources {
		if i%512 == 0 {
			clock.add(100 * time.Millisecond) // a flood over seconds: sweeps run
		}
		ip := net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String()
		tk, why := a.admit(tcpAddr(ip, 1))
		if why != "" {
			t.Fatalf("source %d refused: %s", i, why)
		}
		tk.done(false)
	}
	s, ok := a.sources[sourceKey(peer)]
	if !ok || !clock.now().Before(s.trustedUntil) {
		t.Fatalf("the trusted source was evicted by the flood (held %v)", ok)
	}
}

// BenchmarkAdmissionFlood is the cost of admitting a connection from a new
// source while the table is full of sources that each failed a handshake
// (so none may be forgotten): a flood from many addresses.
func BenchmarkAdmissionFlood(b *testing.B) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	a := newAdmission(clock.now)
	for i := range maxTrackedSources {
		tk, _ := a.admit(tcpAddr(net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String(), 1))
		tk.done(false)
	}
	addrs := make([]net.Addr, 1<<16)
	for i := range addrs {
		addrs[i] = tcpAddr(net.IPv4(11, byte(i>>16), byte(i>>8), byte(i)).String(), 1)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		tk, why := a.admit(addrs[i%len(addrs)])
		if why != "" {
			b.Fatal(why)
		}
		tk.done(false)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestHandshakeFailuresAreOneEntryAndOneLogLine: a burst of failures is one
// coalesced diagnostics entry with the counts and the last remote and
// reason, and one warning line, none of which shows the cookie.
func TestHandshakeFailuresAreOneEntryAndOneLogLine(t *testing.T) {
	var logs syncBuffer
	cfg := testConfig(t, "solo", "127.0.0.1", freePort(t), RolePrimary)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	n := startNode(t, cfg)
	before := len(n.Diagnostics().Entries)
	for i := range 200 {
		reason := reasonAuthFailed
		if i%4 == 3 {
			reason = reasonRateLimited
		}
		n.handshakeFailed(fmt.Sprintf("10.0.0.%d:1", i%250), reason, "")
	}
	entries := n.Diagnostics().Entries
	var rejected []continuity.Entry
	for _, e := range entries {
		if e.Transition == transitionHandshakeRejected {
			rejected = append(rejected, e)
		}
	}
	if len(rejected) != 1 || len(entries) > before+1 {
		t.Fatalf("%d handshake_rejected entries, %d entries (was %d); want one coalesced entry", len(rejected), len(entries), before)
	}
	e := rejected[0]
	want := []continuity.KV{{Key: "remote_addr", Value: "10.0.0.199:1"}, {Key: "handshake_failures", Value: "200"},
		{Key: "authentication_failures", Value: "150"}, {Key: "refused_connections", Value: "50"}}
	if !slices.Equal(e.Metadata, want) || e.Reason != reasonRateLimited {
		t.Fatalf("entry %+v, want metadata %v and reason %s", e, want, reasonRateLimited)
	}
	if lines := strings.Count(logs.String(), "handshake failed"); lines != 1 {
		t.Fatalf("%d log lines for 200 failures, want 1 (one per %v):\n%s", lines, handshakeLogEvery, logs.String())
	}
	if strings.Contains(logs.String(), string(cfg.Cookie)) {
		t.Fatal("the log shows the cookie")
	}
}
