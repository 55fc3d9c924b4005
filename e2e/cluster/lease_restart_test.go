package cluster_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// After a failover, both nodes are killed and restarted within the lease's
// TTL: the promoted node comes back as primary from its state dir while its
// own lease still runs, the other at whatever its state dir says. The pair
// must end with exactly one primary, acting under the lease epoch it holds
// (one epoch: promotion_epoch equals the lease's), and stay that way. It
// used to end with two connected standbys and nothing that promoted either.
func TestLeaseRestartBothAfterFailoverElectsPrimary(t *testing.T) {
	eachLeaseStore(t, testLeaseRestartBoth)
}

func testLeaseRestartBoth(t *testing.T, ls *leaseStore) {
	h := newHarness(t)
	p, s, epoch := leasePair(t, h, ls)
	p.proc.Kill()
	h.waitAuthority(s, "primary", epoch+1, 0, 15*time.Second)
	s.proc.Kill()
	restarted := time.Now()
	p.proc.Restart()
	s.proc.Restart()
	h.waitReady(p)
	h.waitReady(s)
	primary, _ := waitOnePrimary(t, h, p, s, epoch+1, 15*time.Second)
	t.Logf("%s primary after the restart of both within the TTL, after %v", primary.name, time.Since(restarted).Round(10*time.Millisecond))
	h.eventually(5*time.Second, func() error {
		if code, _, body := httpGetKey(t, primary.http+"/one", nextKey("restart-both")); code != http.StatusOK {
			return fmt.Errorf("primary answered %d %s", code, body)
		}
		return nil
	})
}

// A fresh pair (new names, empty state dirs) boots while a dead node of a
// previous run still holds an unexpired lease on the same row. The
// configured primary cannot win it and steps down to its epoch; once it
// expires, the pair must elect a primary at a higher epoch.
func TestLeaseFreshPairAfterDeadHolderElectsPrimary(t *testing.T) {
	eachLeaseStore(t, testLeaseFreshPairDeadHolder)
}

func testLeaseFreshPairDeadHolder(t *testing.T, ls *leaseStore) {
	old := newHarness(t)
	oldP, oldS, epoch := leasePair(t, old, ls)
	oldS.proc.Kill()
	oldP.proc.Kill() // its lease runs for up to a TTL

	h := newHarness(t)
	h.dir = filepath.Join(old.dir, "second-pair")
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if h.port == old.port {
		t.Fatal("second pair got the first pair's port: node names would repeat")
	}
	booted := time.Now()
	extra := []string{"MESH_ARBITER=" + ls.value, "MESH_DIAGNOSTICS_CAPACITY=20000"}
	p := h.start("primary", "127.0.0.1", "primary", append([]string{"TESTAPP_HTTP_ADDR=" + httpAddr(t)}, extra...)...)
	s := h.start("standby", "::1", "standby", append([]string{"TESTAPP_HTTP_ADDR=" + httpAddr(t)}, extra...)...)
	primary, _ := waitOnePrimary(t, h, p, s, epoch+1, 15*time.Second)
	t.Logf("%s primary %v after the fresh pair booted under a dead holder's lease", primary.name, time.Since(booted).Round(10*time.Millisecond))
	h.eventually(5*time.Second, func() error {
		if code, _, body := httpGetKey(t, primary.http+"/one", nextKey("fresh-pair")); code != http.StatusOK {
			return fmt.Errorf("primary answered %d %s", code, body)
		}
		return nil
	})
}

// waitOnePrimary waits until exactly one of a and b is primary, holds the
// lease at its promotion epoch (at least minEpoch), and the other is a
// standby at that epoch, both linked; then checks that this holds for two
// more TTLs (no flapping, no second primary). It returns the primary and
// the standby.
func waitOnePrimary(t *testing.T, h *harness, a, b *node, minEpoch uint64, timeout time.Duration) (primary, standby *node) {
	t.Helper()
	var epoch uint64
	check := func() error {
		sa, errA := h.leaseStatus(a)
		sb, errB := h.leaseStatus(b)
		if errA != nil || errB != nil {
			return fmt.Errorf("status: %v, %v", errA, errB)
		}
		var ps, ss leaseStatusDoc
		switch {
		case sa.Authority.Role == "primary" && sb.Authority.Role == "standby":
			primary, standby, ps, ss = a, b, sa, sb
		case sb.Authority.Role == "primary" && sa.Authority.Role == "standby":
			primary, standby, ps, ss = b, a, sb, sa
		default:
			return fmt.Errorf("roles %s %s@%d, %s %s@%d", a.name, sa.Authority.Role, sa.Authority.Epoch, b.name, sb.Authority.Role, sb.Authority.Epoch)
		}
		l := ps.Authority.Lease
		if l == nil || l.Holder != primary.name || l.Epoch != ps.Authority.Epoch || l.Epoch < minEpoch || !ps.Readiness.Ready {
			return fmt.Errorf("primary %s at epoch %d, lease %+v, ready %v (want the lease at its epoch, at least %d)",
				primary.name, ps.Authority.Epoch, l, ps.Readiness.Ready, minEpoch)
		}
		if ss.Authority.Epoch != ps.Authority.Epoch {
			return fmt.Errorf("standby %s at epoch %d, primary at %d", standby.name, ss.Authority.Epoch, ps.Authority.Epoch)
		}
		if epoch != 0 && ps.Authority.Epoch != epoch {
			return fmt.Errorf("primary's epoch moved from %d to %d", epoch, ps.Authority.Epoch)
		}
		epoch = ps.Authority.Epoch
		return nil
	}
	h.eventually(timeout, check)
	p := primary
	h.waitAuthority(primary, "primary", epoch, 1, 5*time.Second)
	h.waitAuthority(standby, "standby", epoch, 1, 5*time.Second)
	for end := time.Now().Add(2 * leaseTTL); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if err := check(); err != nil || primary != p {
			t.Fatalf("pair did not stay with one primary: %v (primary %s, was %s)", err, primary.name, p.name)
		}
	}
	return primary, standby
}
