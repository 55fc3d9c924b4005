package cluster

import (
	"strconv"
	"sync"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// transitionHandshakeRejected is the one coalesced diagnostics entry that
// counts failed and refused inbound handshakes (and failed dials).
const transitionHandshakeRejected = "handshake_rejected"

// handshakeLogEvery is the least time between two warning lines about
// failed handshakes; the lines in between are counted, not written.
const handshakeLogEvery = 10 * time.Second

// handshakeFailures counts failed handshakes. Every failure updates one
// coalesced diagnostics entry (counts, last remote address, last reason),
// so a flood of bad connections can never push real transitions out of the
// ring, and the warning log line is rate-limited.
type handshakeFailures struct {
	mu         sync.Mutex // guards the fields below
	total      uint64
	authFailed uint64
	refused    uint64 // closed before any handshake work by admission
	unlogged   uint64 // failures since the last log line
	lastLog    time.Time
}

// handshakeFailed records one failure. remote is the peer's address, reason
// one of the reason constants of admission.go, detail the error text (never
// containing the cookie; empty for refusals).
func (n *Node) handshakeFailed(remote, reason, detail string) {
	n.met.handshakeFailure(reason)
	f := &n.hsFailures
	now := time.Now()
	f.mu.Lock()
	f.total++
	switch reason {
	case reasonAuthFailed:
		f.authFailed++
	case reasonRateLimited, reasonSourceLimit, reasonTotalLimit:
		f.refused++
	}
	meta := []continuity.KV{
		{Key: "remote_addr", Value: remote},
		{Key: "handshake_failures", Value: strconv.FormatUint(f.total, 10)},
		{Key: "authentication_failures", Value: strconv.FormatUint(f.authFailed, 10)},
		{Key: "refused_connections", Value: strconv.FormatUint(f.refused, 10)},
	}
	role, epoch := n.reg.Authority()
	// Stored under f.mu so that the entry with the highest count is the one
	// that stays.
	n.reg.Diagnostics().Coalesce(continuity.Entry{Transition: transitionHandshakeRejected, Reason: reason,
		ClusterRole: role, PromotionEpoch: epoch, Metadata: meta, Time: now.UTC()})
	f.unlogged++
	logNow := f.lastLog.IsZero() || now.Sub(f.lastLog) >= handshakeLogEvery
	var since uint64
	if logNow {
		since, f.unlogged, f.lastLog = f.unlogged, 0, now
	}
	total, auth, refused := f.total, f.authFailed, f.refused
	f.mu.Unlock()

	if !logNow {
		return
	}
	msg := "[mesh-rt transport] handshake failed"
	if reason == reasonAuthFailed {
		msg = "[mesh-rt transport] handshake failed: authentication failed"
	}
	attrs := []any{"remote_addr", remote, "reason", reason, "failures_since_last_line", since,
		"handshake_failures", total, "authentication_failures", auth, "refused_connections", refused}
	if detail != "" {
		attrs = append(attrs, "error", detail)
	}
	n.log.Warn(msg, attrs...)
}
