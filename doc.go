// Package mesh is the clustered application runtime for Go services.
//
// A service declares clustered work next to ordinary functions and wraps chosen
// net/http routes, then calls StartFromEnv once. Started twice — a primary and a
// standby configured through MESH_* environment variables — the runtime forms an
// authenticated TLS cluster, gives every clustered request a continuity record
// keyed by its request key, mirrors the record to the peer, promotes the standby
// under a higher epoch when the primary is lost, re-runs in-flight work under a
// new attempt and fences the old primary when it rejoins.
//
// # Declaring work
//
//	package work
//
//	var _ = mesh.Work(Add) // runtime name "work.Add", replication count 2
//
//	func Add(ctx context.Context) (int, error) { return 1 + 1, nil }
//
// # Clustered routes
//
//	mux.Handle("GET /todos", mesh.Clustered(1, todos.List))
//
// # Bootstrap
//
//	status, err := mesh.StartFromEnv()
//
// # Layout
//
// This package is the public face of the runtime. The engine lives in
// internal/cluster; the types this package hands out (Config, Node, Health,
// Record, ...) are aliases of the engine's and the record state machine's
// types, declared in aliases.go, so their fields and methods are documented
// with the original types (go doc meshgo.dev/mesh/internal/cluster.Node).
//
// The package imports only the standard library and mesh's internal packages.
package mesh
