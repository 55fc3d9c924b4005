package cluster_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/meshtest"
	"meshgo.dev/mesh/meshtest/etcdtest"
	"meshgo.dev/mesh/meshtest/pgtest"
)

// The lease arbiter with real processes, each scenario once against a
// throwaway PostgreSQL server (meshtest/pgtest: skipped without initdb and
// pg_ctl, failed instead under MESH_REQUIRE_POSTGRES=1) and once against a
// throwaway etcd server with authentication on (meshtest/etcdtest: skipped
// without etcd, failed instead under MESH_REQUIRE_ETCD=1). Lease timing is the default: TTL 2 s,
// renewal every 500 ms, safety margin 300 ms.

// leaseStore is the arbiter server of one run of a lease scenario.
type leaseStore struct {
	kind        string // the safety_mode it gives
	value       string // MESH_ARBITER
	secret      string // what no node may log; "" when the value holds none
	stop, start func(testing.TB)
}

// eachLeaseStore runs test as a subtest against each arbiter backend.
func eachLeaseStore(t *testing.T, test func(t *testing.T, ls *leaseStore)) {
	t.Run("postgres", func(t *testing.T) {
		srv := pgtest.NewServer(t)
		test(t, &leaseStore{kind: "postgres", value: srv.URL(), secret: password(t, srv.URL()), stop: srv.Stop, start: srv.Start})
	})
	t.Run("etcd", func(t *testing.T) {
		srv := etcdtest.NewServer(t)
		// With authentication on, as a production etcd would have it: the
		// nodes log in with the credentials in MESH_ARBITER and never
		// show them.
		srv.EnableAuth(t, etcdPassword)
		value := "etcd://" + url.UserPassword("root", etcdPassword).String() + "@" + srv.Endpoint()
		test(t, &leaseStore{kind: "etcd", value: value, secret: etcdPassword, stop: srv.Stop, start: srv.Start})
	})
}

// etcdPassword is the etcd root user's password in the lease scenarios.
const etcdPassword = "etcd-s3cret/Pw"

const leaseTTL = 2 * time.Second

type leaseStatusDoc struct {
	Authority struct {
		Role       string `json:"cluster_role"`
		Epoch      uint64 `json:"promotion_epoch"`
		SafetyMode string `json:"safety_mode"`
		Lease      *struct {
			Holder      string `json:"holder"`
			Epoch       uint64 `json:"epoch"`
			ExpiresInMS int64  `json:"expires_in_ms"`
		} `json:"lease"`
		Refusal *string `json:"last_promotion_refusal"`
	} `json:"authority"`
	Readiness struct {
		Ready  bool    `json:"ready"`
		Reason *string `json:"reason"`
	} `json:"readiness"`
}

func (h *harness) leaseStatus(n *node) (leaseStatusDoc, error) {
	var s leaseStatusDoc
	return s, h.query(&s, "cluster", "status", n.name)
}

// leasePair starts a primary and a standby under the lease arbiter ls and
// waits until the primary holds the lease; it returns the lease's epoch.
func leasePair(t *testing.T, h *harness, ls *leaseStore, more ...string) (p, s *node, epoch uint64) {
	t.Helper()
	extra := append([]string{"MESH_ARBITER=" + ls.value, "MESH_DIAGNOSTICS_CAPACITY=20000"}, more...)
	p = h.start("primary", "127.0.0.1", "primary", append([]string{"TESTAPP_HTTP_ADDR=" + httpAddr(t)}, extra...)...)
	s = h.start("standby", "::1", "standby", append([]string{"TESTAPP_HTTP_ADDR=" + httpAddr(t)}, extra...)...)
	h.eventually(10*time.Second, func() error {
		st, err := h.leaseStatus(p)
		if err != nil {
			return err
		}
		if st.Authority.SafetyMode != ls.kind || st.Authority.Lease == nil || st.Authority.Lease.Holder != p.name || !st.Readiness.Ready {
			return fmt.Errorf("primary status %+v", st)
		}
		epoch = st.Authority.Lease.Epoch
		return nil
	})
	// The primary acts under the epoch it won the lease at, and the
	// standby has learned it.
	h.waitAuthority(p, "primary", epoch, 1, 10*time.Second)
	h.waitAuthority(s, "standby", epoch, 1, 10*time.Second)
	httpGet(t, p.http+"/plain") // both HTTP servers answer
	httpGet(t, s.http+"/plain")
	// Both nodes report the same lease, and no log shows the password.
	st, err := h.leaseStatus(s)
	if err != nil || st.Authority.SafetyMode != ls.kind || st.Authority.Lease == nil || st.Authority.Lease.Holder != p.name {
		t.Fatalf("standby status %+v, %v", st, err)
	}
	if ls.secret == "" {
		return p, s, epoch
	}
	t.Cleanup(func() {
		for _, n := range []*node{p, s} {
			if log := n.proc.Log(); strings.Contains(log, ls.secret) || strings.Contains(log, ls.value) {
				t.Errorf("%s logged the arbiter's credentials (log %s)", n.name, n.proc.LogPath())
			}
		}
	})
	return p, s, epoch
}

func password(t *testing.T, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" {
		t.Fatalf("pgtest URL has no password")
	}
	return pw
}

// leaseGet sends GET url with a fresh Idempotency-Key and returns status
// and body; a client error (a frozen node) is status 0.
func leaseGet(client *http.Client, url, key string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Idempotency-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var leaseKeys atomic.Int64

func nextKey(prefix string) string { return fmt.Sprintf("%s-%d", prefix, leaseKeys.Add(1)) }

// SIGKILL of the primary: the standby promotes by winning the lease at the
// next epoch, then serves.
func TestLeaseKillPrimaryStandbyWinsLease(t *testing.T) {
	eachLeaseStore(t, testLeaseKillPrimary)
}

func testLeaseKillPrimary(t *testing.T, ls *leaseStore) {
	h := newHarness(t)
	p, s, epoch := leasePair(t, h, ls)
	if code, _, body := httpGetKey(t, p.http+"/todos", nextKey("kill-pre")); code != http.StatusOK {
		t.Fatalf("primary with the lease answered %d %s", code, body)
	}
	p.proc.Kill()
	killed := time.Now()
	h.waitAuthority(s, "primary", epoch+1, 0, 15*time.Second)
	t.Logf("standby promoted by lease %v after SIGKILL", time.Since(killed).Round(10*time.Millisecond))
	st, err := h.leaseStatus(s)
	if err != nil || st.Authority.Lease == nil || st.Authority.Lease.Holder != s.name || st.Authority.Lease.Epoch != epoch+1 {
		t.Fatalf("new primary's status %+v, %v", st, err)
	}
	// The kill is seen at once (the link closes), while the dead primary's
	// lease still runs: the standby was refused first, and says so.
	if got := str(st.Authority.Refusal); got != "lease_held_by:"+p.name {
		t.Fatalf("last_promotion_refusal %q, want lease_held_by:%s", got, p.name)
	}
	d, err := h.diagnostics(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.find("arbiter_lease_acquired", ""); len(got) == 0 || got[len(got)-1].meta("lease_epoch") != fmt.Sprint(epoch+1) {
		t.Fatalf("arbiter_lease_acquired entries %+v", got)
	}
	if promo := d.find("automatic_promotion", ""); len(promo) != 1 || promo[0].meta("next_epoch") != fmt.Sprint(epoch+1) {
		t.Fatalf("automatic_promotion entries %+v", promo)
	}
	h.eventually(5*time.Second, func() error {
		// A count-1 route: a count-2 one needs the replica that died.
		if code, _, body := httpGetKey(t, s.http+"/one", nextKey("kill-post")); code != http.StatusOK {
			return fmt.Errorf("new primary answered %d %s", code, body)
		}
		return nil
	})
}

// completedBy returns the completion times of the records n executed
// itself, from n's own record list.
func completedBy(t *testing.T, h *harness, n *node) []time.Time {
	t.Helper()
	var list struct {
		Truncated bool `json:"truncated"`
		Records   []struct {
			ExecutionNode string     `json:"execution_node"`
			CompletedAt   *time.Time `json:"completed_at"`
		} `json:"records"`
	}
	if err := h.query(&list, "cluster", "continuity", n.name); err != nil {
		t.Fatal(err)
	}
	if list.Truncated {
		t.Fatalf("%s record list truncated: the check would be blind", n.name)
	}
	var out []time.Time
	for _, r := range list.Records {
		if r.ExecutionNode == n.name && r.CompletedAt != nil {
			out = append(out, *r.CompletedAt)
		}
	}
	return out
}

// entryTime is the time of the first diagnostic of n with transition.
func entryTime(t *testing.T, h *harness, n *node, transition string) time.Time {
	t.Helper()
	var d struct {
		Entries []struct {
			Transition string    `json:"transition"`
			Time       time.Time `json:"time"`
		} `json:"entries"`
	}
	if err := h.query(&d, "cluster", "diagnostics", n.name); err != nil {
		t.Fatal(err)
	}
	for _, e := range d.Entries {
		if e.Transition == transition {
			return e.Time
		}
	}
	t.Fatalf("%s has no %s diagnostic", n.name, transition)
	return time.Time{}
}

// SIGSTOP of the primary for longer than the TTL: the standby wins the
// lease and promotes; on SIGCONT the old primary, past its deadline, never
// serves as primary again — it answers arbiter_unavailable until it is
// fenced to standby at the new epoch. Its last completion as primary comes
// before the new primary's promotion.
func TestLeaseFrozenPrimaryLosesLease(t *testing.T) {
	eachLeaseStore(t, testLeaseFrozenPrimary)
}

func testLeaseFrozenPrimary(t *testing.T, ls *leaseStore) {
	h := newHarness(t)
	p, s, epoch := leasePair(t, h, ls)

	// A client keeps both nodes busy throughout.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served atomic.Int64
	client := &http.Client{Timeout: time.Second}
	for _, n := range []*node{p, s} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(40 * time.Millisecond):
				}
				if code, _ := leaseGet(client, n.http+"/one", nextKey("frozen")); code == http.StatusOK {
					served.Add(1)
				}
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	time.Sleep(500 * time.Millisecond)

	p.proc.Stop()
	frozen := time.Now()
	h.waitAuthority(s, "primary", epoch+1, 0, 20*time.Second)
	t.Logf("standby promoted by lease %v after SIGSTOP", time.Since(frozen).Round(10*time.Millisecond))
	if time.Since(frozen) < leaseTTL-300*time.Millisecond {
		t.Fatalf("standby promoted %v after the freeze, before the frozen primary's lease could expire", time.Since(frozen))
	}
	time.Sleep(time.Second)
	p.proc.Cont()
	// At once: the old primary is past its deadline.
	if code, body := leaseGet(&http.Client{Timeout: 5 * time.Second}, p.http+"/one", nextKey("thawed")); code == http.StatusOK {
		// Only as a standby forwarding to the new primary.
		if role, _ := h.leaseStatus(p); role.Authority.Role == "primary" {
			t.Fatalf("thawed old primary served as primary: %s", body)
		}
	}
	h.waitAuthority(p, "standby", epoch+1, 1, 15*time.Second)
	h.waitAuthority(s, "primary", epoch+1, 1, 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if served.Load() == 0 {
		t.Fatal("no request was served during the test")
	}

	// Never two primaries at once: the old primary completed nothing
	// between the new primary's promotion and its own step-down.
	promoted := entryTime(t, h, s, "automatic_promotion")
	fenced := entryTime(t, h, p, "fenced_rejoin")
	if !fenced.After(promoted) {
		t.Fatalf("old primary fenced at %v, before the promotion at %v", fenced, promoted)
	}
	var before int
	for _, c := range completedBy(t, h, p) {
		if !c.Before(promoted) && c.Before(fenced) {
			t.Fatalf("old primary completed work at %v, after the new primary's promotion (%v) and before its step-down (%v)", c, promoted, fenced)
		}
		if c.Before(promoted) {
			before++
		}
	}
	if before == 0 {
		t.Fatal("the old primary completed nothing before the freeze: the check would be blind")
	}
	t.Logf("old primary completed %d requests before the freeze; none between %v and %v", before, promoted.Format(time.StampMilli), fenced.Format(time.StampMilli))
}

// The arbiter server stopped while the pair runs: the primary stops serving its
// clustered routes (503 arbiter_unavailable) once its deadline passes,
// readiness says arbiter_unavailable, and nothing promotes. The server back:
// the holder renews the same lease and serves again.
func TestLeaseArbiterDownPrimaryStopsThenResumes(t *testing.T) {
	eachLeaseStore(t, testLeaseArbiterDown)
}

func testLeaseArbiterDown(t *testing.T, ls *leaseStore) {
	h := newHarness(t)
	p, s, epoch := leasePair(t, h, ls)

	ls.stop(t)
	down := time.Now()
	client := &http.Client{Timeout: 5 * time.Second}
	var refusedAfter time.Duration
	h.eventually(10*time.Second, func() error {
		// Keys spread over both owners: some land on the primary.
		for range 16 {
			code, body := leaseGet(client, p.http+"/one", nextKey("down"))
			if code == http.StatusServiceUnavailable && strings.Contains(body, "arbiter_unavailable") {
				refusedAfter = time.Since(down)
				return nil
			}
		}
		return fmt.Errorf("primary still serving every request")
	})
	t.Logf("primary refused with arbiter_unavailable %v after the %s server stopped", ls.kind, refusedAfter.Round(10*time.Millisecond))
	if refusedAfter > leaseTTL+time.Second {
		t.Fatalf("primary served %v without a lease it could renew (TTL %v)", refusedAfter, leaseTTL)
	}
	st, err := h.leaseStatus(p)
	if err != nil || st.Readiness.Ready || str(st.Readiness.Reason) != "arbiter_unavailable" || st.Authority.Role != "primary" {
		t.Fatalf("primary status while the %s server is down %+v, %v", ls.kind, st, err)
	}
	// Several TTLs: nothing promotes, nobody is fenced.
	time.Sleep(3 * leaseTTL)
	h.waitAuthority(p, "primary", epoch, 1, time.Second)
	h.waitAuthority(s, "standby", epoch, 1, time.Second)
	d, err := h.diagnostics(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.find("arbiter_unavailable", "")) == 0 {
		t.Fatal("primary never reported arbiter_unavailable")
	}

	ls.start(t)
	h.eventually(15*time.Second, func() error {
		st, err := h.leaseStatus(p)
		if err != nil {
			return err
		}
		if !st.Readiness.Ready || st.Authority.Lease == nil || st.Authority.Lease.Holder != p.name || st.Authority.Lease.Epoch != epoch {
			return fmt.Errorf("primary status %+v", st)
		}
		return nil
	})
	for range 8 {
		if code, body := leaseGet(client, p.http+"/one", nextKey("back")); code != http.StatusOK {
			t.Fatalf("primary answered %d %s after the %s server came back", code, body, ls.kind)
		}
	}
}

// Wrong credentials at boot: a clear bootstrap error that shows neither the
// password nor the connection string.
func TestLeaseWrongCredentialsAtBoot(t *testing.T) {
	eachLeaseStore(t, func(t *testing.T, ls *leaseStore) {
		h := newHarness(t)
		u, err := url.Parse(ls.value)
		if err != nil {
			t.Fatal(err)
		}
		const wrong = "wrong-s3cret-pw"
		u.User = url.UserPassword(u.User.Username(), wrong)
		_, env := h.nodeEnv("primary", "127.0.0.1", "primary", "MESH_ARBITER="+u.String())
		proc := meshtest.StartProcess(t, "primary", h.app, env, "")
		proc.WaitLog(t, "[testapp] runtime bootstrap failed reason=", 15*time.Second)
		log := proc.Log()
		if !strings.Contains(log, "arbiter "+u.Scheme+"://"+u.Host) || strings.Contains(log, wrong) || strings.Contains(log, u.String()) ||
			strings.Contains(log, ls.secret) {
			t.Fatalf("bootstrap error with wrong credentials:\n%s", log)
		}
	})
}
