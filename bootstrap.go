package mesh

import (
	"context"
	"errors"
)

// BootstrapStatus says how StartFromEnv started the runtime.
type BootstrapStatus struct {
	Mode          Mode
	NodeName      string // "" in standalone mode
	ClusterPort   int
	DiscoverySeed string // "" in standalone mode
}

// StartFromEnv reads the MESH_* environment, validates it and starts the
// process's node: standalone when no cookie and no cluster hints are set,
// otherwise a cluster node listening on the host and port of its node name.
func StartFromEnv() (BootstrapStatus, error) {
	return BootstrapStatus{}, errors.New("mesh: runtime not built yet")
}

// Shutdown stops the process's node: it stops accepting work, closes its
// cluster sessions and listener, and waits for running handlers until ctx is
// done. It is safe to call when no node was started.
func Shutdown(ctx context.Context) error { return nil }
