//go:build mesh_noetcd

package cluster

import (
	"context"
	"errors"

	"meshgo.dev/mesh/internal/arbiter"
)

// errEtcdCompiledOut is why a node built with the mesh_noetcd tag refuses
// MESH_ARBITER=etcd://...
var errEtcdCompiledOut = errors.New("the etcd arbiter is not in this binary (built with -tags mesh_noetcd); rebuild without the tag or use postgres://")

func openEtcd(context.Context, arbiter.DSN, string, arbiter.Timing) (arbiter.Arbiter, func(), error) {
	return nil, nil, errEtcdCompiledOut
}
