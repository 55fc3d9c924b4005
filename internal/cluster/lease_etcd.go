//go:build !mesh_noetcd

package cluster

import (
	"context"

	"meshgo.dev/mesh/internal/arbiter"
	etcdarbiter "meshgo.dev/mesh/internal/arbiter/etcd"
)

// openEtcd opens the etcd lease arbiter at dsn and returns it with the
// function that closes it.
func openEtcd(ctx context.Context, dsn arbiter.DSN, cluster string, t arbiter.Timing) (arbiter.Arbiter, func(), error) {
	a, err := etcdarbiter.Open(ctx, etcdarbiter.Config{URL: dsn, Cluster: cluster, Timing: t})
	if err != nil {
		return nil, nil, err
	}
	return a, a.Close, nil
}
