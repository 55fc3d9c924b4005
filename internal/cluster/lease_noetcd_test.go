//go:build mesh_noetcd

package cluster

import (
	"strings"
	"testing"
)

// In a build with the mesh_noetcd tag, MESH_ARBITER=etcd://... is a
// bootstrap error that says why and names the arbiter without its
// credentials.
func TestLeaseEtcdCompiledOut(t *testing.T) {
	cfg := testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary)
	cfg.Arbiter = ArbiterDSN("etcd://root:s3cretpw@127.0.0.1:2379")
	n, err := Start(cfg)
	if err == nil {
		stop(n)
		t.Fatal("Start succeeded with the etcd arbiter compiled out")
	}
	msg := err.Error()
	if !strings.Contains(msg, "arbiter etcd://127.0.0.1:2379: ") || !strings.Contains(msg, "-tags mesh_noetcd") ||
		strings.Contains(msg, "s3cretpw") || strings.Contains(msg, "root:") {
		t.Fatalf("bootstrap error %q", msg)
	}
}
