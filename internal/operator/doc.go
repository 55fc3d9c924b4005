// Package operator owns the operator contract of a Mesh node: the queries
// `meshc cluster` sends, the JSON documents a node answers with, their
// validation on the way back, and their human-readable rendering.
//
// The server half (Source, Answer, Serve) runs inside a node and builds reply
// bodies from the node's local view only; it never fans out to peers. The
// client half (Query and the Decode functions) runs inside meshc: it opens one
// short-lived authenticated connection per query, as a client that never
// joins membership, and validates what comes back before anything is printed.
//
// The JSON documents are a published contract (DESIGN §6): every object's keys
// are sorted, absent optional values are null, and arrays are never null. The
// DTO structs declare their fields in key order so encoding/json keeps it.
//
// operator imports the standard library and internal/continuity,
// internal/wire and internal/handshake. It does not import package mesh, so
// the node runtime in package mesh can import it.
package operator
