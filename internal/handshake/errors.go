package handshake

import (
	"errors"
	"regexp"
	"strconv"
)

// Sentinel errors returned (wrapped) by Client and Server; match them with
// errors.Is. None of them, nor any error this package returns, contains the
// cookie.
var (
	// ErrAuthFailed means the two sides do not share the cluster cookie (or a
	// man-in-the-middle sits between them). Both sides report it.
	ErrAuthFailed = errors.New("authentication failed: cluster cookie mismatch")
	// ErrRefused means the peer refused the handshake for a reason other than
	// the cookie (an unsupported protocol version, an invalid name); the
	// peer's reason follows in the error text.
	ErrRefused = errors.New("handshake refused by peer")
	// ErrProtocol means the peer sent something this side cannot accept: a
	// malformed or unexpected message, an invalid name, another version.
	ErrProtocol = errors.New("handshake protocol violation")
	// ErrBelowMinimum means the two sides would settle on a protocol
	// version below this side's Config.MinVersion, so this side refused to
	// link (a server tells the client why).
	ErrBelowMinimum = errors.New("peer's protocol version is below this side's minimum")
)

// olderPeerReason matches the refusal a server of version 3 sends a client
// hello of a newer version: "unsupported protocol version 4 (this side
// speaks 3)". Servers from version 4 on answer such a hello with their own
// version instead of refusing it.
var olderPeerReason = regexp.MustCompile(`unsupported protocol version [0-9]+ \(this side speaks ([0-9]+)\)`)

// PeerVersion reports whether err is a refusal by a server that speaks only
// an older protocol version this side also speaks, and which one: dial
// again with Config.Version set to it.
func PeerVersion(err error) (uint8, bool) {
	if !errors.Is(err, ErrRefused) {
		return 0, false
	}
	m := olderPeerReason.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, false
	}
	v, perr := strconv.ParseUint(m[1], 10, 8)
	if perr != nil || v < MinVersion || v >= Version {
		return 0, false
	}
	return uint8(v), true
}
