package mesh

import "meshgo.dev/mesh/internal/cluster"

// Sentinel errors of package mesh, matched with errors.Is. Every exported
// sentinel lives in this file; each is the very value the engine returns.

// ErrNotDeclared is returned by Submit for a runtime name that was never
// declared with Work.
var ErrNotDeclared = cluster.ErrNotDeclared
