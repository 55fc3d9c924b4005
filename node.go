package mesh

import (
	"context"
	"log/slog"

	"meshgo.dev/mesh/internal/cluster"
)

// WithNetwork makes the node listen and dial through nw instead of the host's
// TCP stack (for example a fault-injecting network in tests).
func WithNetwork(nw Network) Option { return cluster.WithNetwork(nw) }

// WithLogger makes the node log through l instead of Config.Logger (or
// slog.Default when that is nil). A nil l changes nothing. The runtime never
// changes the default logger.
func WithLogger(l *slog.Logger) Option { return cluster.WithLogger(l) }

// WithLookupHost replaces the resolver used for the discovery seed.
func WithLookupHost(f func(ctx context.Context, host string) ([]string, error)) Option {
	return cluster.WithLookupHost(f)
}

// Start starts a node with cfg. It first checks cfg with Validate and returns
// that error, starting nothing, when cfg is invalid. In cluster mode it binds
// the listener on the host and port of the node name, starts discovery and
// heartbeats, and begins startup work for every declared work function.
func Start(cfg Config, opts ...Option) (*Node, error) { return cluster.Start(cfg, opts...) }

// StartFromEnv reads the MESH_* environment, validates it and starts the
// process's node: standalone when no cookie and no cluster hints are set,
// otherwise a cluster node listening on the host and port of its node name.
// It is the one bootstrap path of a Mesh service and may be called once.
func StartFromEnv() (BootstrapStatus, error) { return cluster.StartFromEnv() }

// Default returns the node started by StartFromEnv. Before StartFromEnv it
// starts and returns a standalone node, so clustered routes and declared work
// keep working (locally) in programs and tests that never bootstrap.
func Default() *Node { return cluster.Default() }

// Shutdown stops the process's node: a primary with a connected standby
// first hands the primary role to it (a planned switchover, as
// meshc cluster switchover does), then the node stops accepting work,
// closes its cluster sessions and listener, and waits for running handlers
// until ctx is done. It is safe to call when no node was started.
func Shutdown(ctx context.Context) error { return cluster.Shutdown(ctx) }
