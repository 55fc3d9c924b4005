package handshake

import "errors"

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
)
