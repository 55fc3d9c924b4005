package cluster

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits on inbound cluster connections before they authenticate. The cluster
// port is reachable by whoever can route to it, cookie or not, so everything
// a connection costs before its proof checks out is bounded here.
const (
	// maxPendingHandshakes bounds unauthenticated connections in flight on a
	// node, whatever their source; a connection over it is closed at once.
	maxPendingHandshakes = 64
	// maxPendingPerSource bounds them per source address (per /64 for IPv6).
	maxPendingPerSource = 8
	// reservedHandshakes are extra slots, beyond maxPendingHandshakes, for
	// sources that authenticated within trustedFor (the peer, an operator's
	// host), so a flood from elsewhere cannot lock them out.
	reservedHandshakes = 16
	trustedFor         = 10 * time.Minute
	// preTLSTimeout is how long an inbound connection has to complete TLS; a
	// connection that connects and sends nothing holds its slot no longer.
	preTLSTimeout = time.Second
	// failureBurst failed handshakes are allowed per source, then one more
	// every failureRefill: online cookie guessing runs at about one guess a
	// second per source, not hundreds.
	failureBurst  = 10
	failureRefill = time.Second
	// maxTrackedSources bounds the per-source table.
	maxTrackedSources = 4096
)

// Reasons an inbound connection is refused before its handshake, or its
// handshake failed, as shown in the coalesced handshake_rejected entry.
const (
	reasonAuthFailed      = "authentication_failed"
	reasonHandshakeFailed = "handshake_failed"
	reasonBelowMinimum    = "protocol_below_minimum"
	reasonRateLimited     = "handshake_rate_limited"
	reasonSourceLimit     = "handshake_source_limit"
	reasonTotalLimit      = "handshake_total_limit"
)

// admission decides, before any TLS work, whether an inbound connection may
// start a handshake. It is safe for concurrent use; its methods never block.
type admission struct {
	now func() time.Time

	mu       sync.Mutex // guards the fields below
	pending  int        // unauthenticated connections in flight (reserved ones included)
	reserved int        // of which in the reserved slots
	sources  map[netip.Prefix]*source
	swept    time.Time // when evict last swept out the entries that remember nothing
}

// source is what admission remembers about one source address.
type source struct {
	pending      int
	tokens       float64   // failed handshakes still allowed now
	refilled     time.Time // when tokens was last brought up to date
	trustedUntil time.Time
}

func newAdmission(now func() time.Time) *admission {
	return &admission{now: now, sources: map[netip.Prefix]*source{}}
}

// sourceKey maps an address to its source: the IPv4 address, or the /64 of
// an IPv6 address (one host usually holds a whole /64).
func sourceKey(addr net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// ticket is one admitted connection; done must be called exactly once.
type ticket struct {
	a        *admission
	key      netip.Prefix
	reserved bool
}

// admit returns a ticket for a connection from addr, or the reason it is
// refused.
func (a *admission) admit(addr net.Addr) (*ticket, string) {
	key := sourceKey(addr)
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.source(key, now)
	s.refill(now)
	switch {
	case s.tokens < 1:
		return nil, reasonRateLimited
	case s.pending >= maxPendingPerSource:
		return nil, reasonSourceLimit
	}
	t := &ticket{a: a, key: key}
	if a.pending-a.reserved >= maxPendingHandshakes {
		if now.After(s.trustedUntil) || a.reserved >= reservedHandshakes {
			return nil, reasonTotalLimit
		}
		t.reserved = true
		a.reserved++
	}
	a.pending++
	s.pending++
	return t, ""
}

// done releases the ticket's slot. A failed handshake spends one of the
// source's failure tokens; an authenticated one makes the source trusted.
func (t *ticket) done(authenticated bool) {
	a := t.a
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending--
	if t.reserved {
		a.reserved--
	}
	s := a.source(t.key, now)
	s.pending--
	s.refill(now)
	if authenticated {
		s.trustedUntil = now.Add(trustedFor)
	} else {
		s.tokens--
	}
	a.forget(t.key, s, now)
}

// source returns the entry of key, making room for a new one if needed.
// Caller holds a.mu.
func (a *admission) source(key netip.Prefix, now time.Time) *source {
	if s, ok := a.sources[key]; ok {
		return s
	}
	if len(a.sources) >= maxTrackedSources {
		a.evict(now)
	}
	s := &source{tokens: failureBurst, refilled: now}
	a.sources[key] = s
	return s
}

// evict makes room in a full table for one more source. Entries that
// remember nothing useful are swept out, at most once per failureRefill: a
// sweep reads every entry, and a flood of new sources (each one a failed
// handshake to remember) would otherwise pay for one on every connection,
// under a.mu. Between sweeps, or when a sweep freed nothing, one entry with
// nothing in flight goes, an untrusted one if any: the first the map's
// randomized order yields, found in a step or two since at most
// maxPendingHandshakes+reservedHandshakes entries have a connection in
// flight. So a flood from more sources than the table holds cannot push out
// the peer's trust, which keeps its reserved handshake slots. Caller holds
// a.mu.
func (a *admission) evict(now time.Time) {
	if now.Sub(a.swept) >= failureRefill {
		a.swept = now
		for k, s := range a.sources {
			s.refill(now)
			a.forget(k, s, now)
		}
		if len(a.sources) < maxTrackedSources {
			return
		}
	}
	var spare netip.Prefix
	found := false
	for k, s := range a.sources {
		if s.pending != 0 {
			continue
		}
		if now.After(s.trustedUntil) {
			delete(a.sources, k)
			return
		}
		if !found {
			spare, found = k, true
		}
	}
	if found {
		delete(a.sources, spare)
	}
}

// forget deletes s when it holds nothing: no connection in flight, all its
// failure tokens, no trust. Caller holds a.mu.
func (a *admission) forget(key netip.Prefix, s *source, now time.Time) bool {
	if s.pending == 0 && s.tokens >= failureBurst && now.After(s.trustedUntil) {
		delete(a.sources, key)
		return true
	}
	return false
}

// refill adds the failure tokens earned since the last refill.
func (s *source) refill(now time.Time) {
	if el := now.Sub(s.refilled); el > 0 {
		s.tokens = min(failureBurst, s.tokens+float64(el)/float64(failureRefill))
		s.refilled = now
	}
}
