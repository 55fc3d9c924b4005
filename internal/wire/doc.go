// Package wire owns the byte format spoken between Mesh processes once a
// session is authenticated: length-prefixed frames, the little-endian codec
// used inside them, and the session messages (heartbeats, continuity records,
// dispatches, forwarded routes, operator queries).
//
// Every decoder here treats its input as hostile: lengths and counts are
// checked against the bytes actually present before anything is allocated,
// enum codes are validated, and decoding never panics. Decoded values never
// alias the input buffer, so callers may reuse it.
//
// wire imports only the standard library and internal/continuity (for the
// record type it encodes). It does no I/O beyond the io.Reader and io.Writer
// it is handed.
package wire
