package cluster

import "errors"

// Sentinel errors of the engine, matched with errors.Is. Package mesh
// re-exports every one of them, under the same name, in its errors.go.

// ErrNotDeclared is returned by Submit for a runtime name that was never
// declared with Work.
var ErrNotDeclared = errors.New("mesh: declared work not registered")
