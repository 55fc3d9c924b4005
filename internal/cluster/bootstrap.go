package cluster

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// BootstrapStatus says how StartFromEnv started the runtime.
type BootstrapStatus struct {
	Mode          Mode
	NodeName      string // "" in standalone mode
	ClusterPort   int
	DiscoverySeed string // "" in standalone mode
}

var (
	defaultMu       sync.Mutex // guards defaultNode and defaultImplicit
	defaultNode     *Node
	defaultImplicit bool // defaultNode is the standalone node Default started
	// defaultLoaded mirrors defaultNode for the lock-free read every
	// clustered request makes; it is only stored with defaultMu held.
	defaultLoaded atomic.Pointer[Node]
)

// setDefault replaces the process's node; defaultMu must be held.
func setDefault(n *Node, implicit bool) {
	defaultNode, defaultImplicit = n, implicit
	defaultLoaded.Store(n)
}

// StartFromEnv reads the MESH_* environment, validates it and starts the
// process's node: standalone when no cookie and no cluster hints are set,
// otherwise a cluster node listening on the host and port of its node name.
// It is the one bootstrap path of a Mesh service and may be called once.
func StartFromEnv() (BootstrapStatus, error) {
	cfg, err := ConfigFromEnv(os.Getenv, os.Hostname)
	if err != nil {
		return BootstrapStatus{}, err
	}
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultNode != nil && !defaultImplicit {
		return BootstrapStatus{}, fmt.Errorf("mesh bootstrap start failed node=%s: node already started", defaultNode.Name())
	}
	if defaultNode != nil {
		// A clustered route or Default ran before bootstrap and started a
		// standalone node; the configured node replaces it.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = defaultNode.Shutdown(ctx)
		cancel()
		setDefault(nil, false)
	}
	n, err := Start(cfg)
	if err != nil {
		return BootstrapStatus{}, err
	}
	setDefault(n, false)
	st := BootstrapStatus{Mode: cfg.mode(), ClusterPort: cfg.ClusterPort}
	if cfg.mode() == ModeCluster {
		st.NodeName = n.Name()
		st.DiscoverySeed = cfg.DiscoverySeed
	}
	return st, nil
}

// Default returns the node started by StartFromEnv. Before StartFromEnv it
// starts and returns a standalone node, so clustered routes and declared work
// keep working (locally) in programs and tests that never bootstrap.
func Default() *Node {
	if n := defaultLoaded.Load(); n != nil {
		return n
	}
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultNode == nil {
		n, err := Start(Config{})
		if err != nil {
			panic(fmt.Sprintf("mesh: start standalone node: %v", err)) // standalone start cannot fail
		}
		setDefault(n, true)
	}
	return defaultNode
}

// Shutdown stops the process's node: it stops accepting work, closes its
// cluster sessions and listener, and waits for running handlers until ctx is
// done. It is safe to call when no node was started.
func Shutdown(ctx context.Context) error {
	defaultMu.Lock()
	n := defaultNode
	defaultMu.Unlock()
	if n == nil {
		return nil
	}
	return n.Shutdown(ctx)
}
