// Package handshake authenticates a new connection between Mesh processes.
//
// It wraps a raw net.Conn in TLS 1.3 and then runs a mutual challenge and
// response inside it: each side proves knowledge of the cluster cookie with an
// HMAC-SHA256 over a transcript of both names, kinds and nonces and the TLS
// session's exporter value. Binding the proof to the exporter means a
// man-in-the-middle who terminates TLS on each side cannot relay proofs
// between the two sessions. The client proves first, so a caller who does not
// know the cookie learns nothing from the server it could attack offline. The
// price is that a client dialing an impostor hands it one MAC to test cookie
// guesses against, so cookies must be high-entropy secrets, not passwords.
//
// Every handshake runs under one deadline on its own connection, so a slow or
// hostile peer delays only itself.
//
// handshake imports the standard library and internal/wire (for framing).
package handshake
