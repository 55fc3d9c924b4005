// Package peer owns the authenticated link between two Mesh processes once
// the handshake is done: framing, the outgoing queue (urgent frames and the
// batched side queue of record transitions), the reader, writer and
// heartbeat goroutines, I/O deadlines, and request/reply calls. It hands
// every decoded message to a Handler and never calls the engine: it imports
// only the standard library and internal/wire, never internal/cluster or
// package mesh (TestPeerDoesNotImportEngine fails if it does).
package peer
