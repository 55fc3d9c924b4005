// Package exchange is the request/response half of a clustered route that
// involves no node state: the payload hash that identifies a request (and
// decides duplicate or conflict for an Idempotency-Key), the pooled recorder
// a route handler writes to, and the versioned encoding of a stored response
// that a retry is answered from, with the rule of which response headers are
// withheld from it. Everything here is pure and deterministic; the encodings
// are shared between nodes of different versions and must not change
// without a migration.
//
// Import rule: exchange imports the standard library and internal/wire (for
// its header field type) only. It never imports package mesh or the engine
// (internal/cluster), which uses it.
package exchange
