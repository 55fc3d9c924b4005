package mesh

import "errors"

// Sentinel errors of package mesh, matched with errors.Is. Every exported
// sentinel lives in this file.

// ErrNotDeclared is returned by Submit for a runtime name that was never
// declared with Work.
var ErrNotDeclared = errors.New("mesh: declared work not registered")
