//go:build !mesh_noetcd

package cluster

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/meshtest/etcdtest"
)

// MESH_ARBITER=etcd://user:password@host:port against an etcd with
// authentication on: the right credentials let the primary win the lease
// and serve; wrong ones, none, or an unreachable server are bootstrap
// errors that name the arbiter by scheme and host and never show the
// password or the user info.
func TestLeaseEtcdCredentials(t *testing.T) {
	srv := etcdtest.NewServer(t)
	const password = "s3cret-Pa55/w@rd"
	srv.EnableAuth(t, password)
	userinfo := url.UserPassword("root", password).String()

	cfg := testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary)
	cfg.Arbiter = ArbiterDSN("etcd://" + userinfo + "@" + srv.Endpoint())
	p := startNode(t, cfg)
	waitDiag(t, p, transitionLeaseAcquired, "")
	eventually(t, 10*time.Second, func() error {
		if role, epoch := p.Authority(); role != RolePrimary || epoch == 0 {
			return fmt.Errorf("node is %s at epoch %d, want primary under the lease", role, epoch)
		}
		return nil
	})
	if e, ok := diagWith(p, continuity.TransitionAutomaticPromotionRejected, ""); ok {
		t.Fatalf("promotion refused with the right credentials: %+v", e)
	}

	const wrong = "wrong-secret-3f9a"
	secrets := []string{password, url.QueryEscape(password), url.PathEscape(password), userinfo, wrong, "root:"}
	for _, tt := range []struct{ name, dsn, want string }{
		{"wrong password", "etcd://root:" + wrong + "@" + srv.Endpoint(), "arbiter etcd://" + srv.Endpoint() + ": "},
		{"no credentials", "etcd://" + srv.Endpoint(), "arbiter etcd://" + srv.Endpoint() + ": "},
		{"unreachable", "etcd://" + userinfo + "@127.0.0.1:1", "arbiter etcd://127.0.0.1:1: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, "other", "127.0.0.1", freePort(t), RolePrimary)
			cfg.Arbiter = ArbiterDSN(tt.dsn)
			n, err := Start(cfg)
			if err == nil {
				stop(n)
				t.Fatal("Start succeeded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "mesh bootstrap start failed node=other@") || !strings.Contains(msg, tt.want) ||
				!strings.Contains(msg, "arbiter unavailable") {
				t.Fatalf("bootstrap error %q, want it to name %q and say the arbiter is unavailable", msg, tt.want)
			}
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Fatalf("bootstrap error %q shows %q", msg, s)
				}
			}
			t.Logf("error: %s", msg)
		})
	}
}
