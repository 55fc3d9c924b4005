package etcd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"meshgo.dev/mesh/internal/arbiter"
	"meshgo.dev/mesh/meshtest/arbitertest"
	"meshgo.dev/mesh/meshtest/etcdtest"
)

// testTiming is etcd's shortest lease (whole seconds; the test server's
// election timeout allows one second); the margin is generous for a busy
// test machine.
var testTiming = arbiter.Timing{TTL: time.Second, Renew: 200 * time.Millisecond, Margin: 300 * time.Millisecond}

// testOpTimeout bounds each request: long enough for a loaded machine's
// fsync, short enough that calls on a stopped server fail quickly.
const testOpTimeout = 2 * time.Second

func open(t *testing.T, rawURL, cluster string, timing arbiter.Timing) *Arbiter {
	t.Helper()
	return arbitertest.Open(t, Open, Config{URL: arbiter.DSN(rawURL), Cluster: cluster, Timing: timing, OpTimeout: testOpTimeout})
}

// setup gives each subtest keys of its own: a fresh store.
func setup(t *testing.T, rawURL string) arbitertest.Setup {
	return arbitertest.RealClock(open(t, rawURL, t.Name(), testTiming), open(t, rawURL, t.Name(), testTiming), testTiming.TTL)
}

func TestConformance(t *testing.T) {
	srv := etcdtest.NewServer(t)
	arbitertest.Run(t, func(t *testing.T) arbitertest.Setup { return setup(t, "etcd://"+srv.Endpoint()) })
}

// The server stops (SIGTERM) under a held lease and starts again.
func TestConformanceServerStopped(t *testing.T) {
	arbitertest.RunUnavailable(t, func(t *testing.T) arbitertest.Setup {
		srv := etcdtest.NewServer(t)
		s := setup(t, "etcd://"+srv.Endpoint())
		s.Break = func() { srv.Stop(t) }
		s.Heal = func() { srv.Start(t) }
		return s
	})
}

// Every call on a stopped server fails with ErrUnavailable within the op
// timeout (plus scheduling slack), never retrying for longer.
func TestServerStoppedUnavailableInBoundedTime(t *testing.T) {
	srv := etcdtest.NewServer(t)
	const opTimeout = 500 * time.Millisecond
	a, err := Open(t.Context(), Config{URL: arbiter.DSN("etcd://" + srv.Endpoint()), Cluster: "bounded", Timing: testTiming, OpTimeout: opTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	l, err := a.Acquire(t.Context(), arbitertest.NodeA, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	const bound = 4 * opTimeout // a renewal makes up to two requests, plus slack
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Renew", func() error { _, err := a.Renew(t.Context(), l); return err }},
		{"Acquire", func() error { _, err := a.Acquire(t.Context(), arbitertest.NodeB, l.Epoch); return err }},
		{"Release", func() error { return a.Release(t.Context(), l) }},
		{"Observe", func() error { _, err := a.Observe(t.Context()); return err }},
	} {
		start := time.Now()
		err := c.call()
		took := time.Since(start)
		if !errors.Is(err, arbiter.ErrUnavailable) {
			t.Fatalf("%s on a stopped server: %v, want ErrUnavailable", c.name, err)
		}
		if took > bound {
			t.Fatalf("%s on a stopped server took %v, want at most %v (op timeout %v)", c.name, took, bound, opTimeout)
		}
		t.Logf("%s: %v after %v", c.name, err, took.Round(time.Millisecond))
	}
	// A caller's shorter deadline wins over the op timeout.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := a.Observe(ctx); !errors.Is(err, arbiter.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Observe with a 100 ms deadline: %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if took := time.Since(start); took > opTimeout {
		t.Fatalf("Observe with a 100 ms deadline took %v", took)
	}
	// Open on an unreachable server fails the same way.
	start = time.Now()
	_, err = Open(t.Context(), Config{URL: arbiter.DSN("etcd://" + srv.Endpoint()), Cluster: "bounded", Timing: testTiming, OpTimeout: opTimeout})
	if !errors.Is(err, arbiter.ErrUnavailable) {
		t.Fatalf("Open on a stopped server: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > bound {
		t.Fatalf("Open on a stopped server took %v", took)
	}
}

// With the server stopped, the holder cannot renew (ErrUnavailable, lease
// unchanged) and nobody can acquire; once the server is back (it keeps its
// leases and gives each a full TTL again) the holder renews at its epoch, and
// the other node wins only after the holder stopped renewing and its local
// deadline has passed.
func TestServerRestartedHolderRenewsThenLeasePasses(t *testing.T) {
	srv := etcdtest.NewServer(t)
	timing := arbiter.Timing{TTL: 2 * time.Second, Renew: 500 * time.Millisecond, Margin: 500 * time.Millisecond}
	addr := "etcd://" + srv.Endpoint()
	a := open(t, addr, "restart", timing)
	b := open(t, addr, "restart", timing)
	l, err := a.Acquire(t.Context(), arbitertest.NodeA, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	r, err := a.Renew(t.Context(), l)
	if !errors.Is(err, arbiter.ErrUnavailable) {
		t.Fatalf("Renew with the server stopped: %v, want ErrUnavailable", err)
	}
	if r != l {
		t.Fatalf("a failed Renew changed the lease: %+v from %+v", r, l)
	}
	if _, err := b.Acquire(t.Context(), arbitertest.NodeB, l.Epoch); !errors.Is(err, arbiter.ErrUnavailable) {
		t.Fatalf("Acquire with the server stopped: %v, want ErrUnavailable", err)
	}
	// Down for longer than the TTL: the lease expired on the holder's
	// clock, but the server restores it with a fresh TTL.
	time.Sleep(timing.TTL)
	srv.Start(t)
	if l, err = a.Renew(t.Context(), l); err != nil {
		t.Fatalf("holder's Renew after the restart: %v", err)
	}
	if st, err := b.Observe(t.Context()); err != nil || st.Holder != arbitertest.NodeA || st.Epoch != l.Epoch || !st.Held() {
		t.Fatalf("Observe after the restart: %+v, %v; want %s holding epoch %d", st, err, arbitertest.NodeA, l.Epoch)
	}
	if _, err := b.Acquire(t.Context(), arbitertest.NodeB, l.Epoch); !errors.Is(err, arbiter.ErrLeaseHeld) {
		t.Fatalf("Acquire of the renewed lease: %v, want ErrLeaseHeld", err)
	}
	// A stops renewing; B polls (arbitertest.AwaitPassed) for the lease, for at most 5 TTLs.
	arbitertest.AwaitPassed(t, a, b, l, timing.TTL)
}

// Clients on separate connections race Acquire at the same seen epoch: in
// every round exactly one wins, at seen+1, and the others are told who.
func TestRacingClientsOneWinner(t *testing.T) {
	srv := etcdtest.NewServer(t)
	names := []string{"n0", "n1", "n2", "n3"}
	clients := make([]*Arbiter, len(names))
	for i := range clients {
		clients[i] = open(t, "etcd://"+srv.Endpoint(), "race", testTiming)
	}
	var seen uint64
	for round := 0; round < 15; round++ {
		var wg sync.WaitGroup
		leases := make([]arbiter.Lease, len(clients))
		errs := make([]error, len(clients))
		gate := make(chan struct{})
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				leases[i], errs[i] = c.Acquire(t.Context(), names[i], seen)
			}()
		}
		close(gate)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: %s and %s both won (%+v, %+v)", round, names[winner], names[i], leases[winner], leases[i])
				}
				winner = i
			case errors.Is(err, arbiter.ErrLeaseHeld), errors.Is(err, arbiter.ErrStaleEpoch):
			default:
				t.Fatalf("round %d: %s Acquire: %v", round, names[i], err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody won: %v", round, errs)
		}
		won := leases[winner]
		if won.Epoch != seen+1 || won.Holder != names[winner] {
			t.Fatalf("round %d: winner's lease %+v, want %s at epoch %d", round, won, names[winner], seen+1)
		}
		for i, err := range errs {
			var c *arbiter.ConflictError
			if i != winner && (!errors.As(err, &c) || c.Epoch != won.Epoch || (errors.Is(err, arbiter.ErrLeaseHeld) && c.Holder != won.Holder)) {
				t.Fatalf("round %d: loser %s got %v, want a conflict naming %s at epoch %d", round, names[i], err, won.Holder, won.Epoch)
			}
		}
		seen = won.Epoch
		if err := clients[winner].Release(t.Context(), won); err != nil {
			t.Fatalf("round %d: Release: %v", round, err)
		}
	}
}

// With authentication on, the right password works, and no error — wrong
// password, unreachable server, malformed URL — shows the credentials.
func TestCredentialsNeverInErrors(t *testing.T) {
	srv := etcdtest.NewServer(t)
	const password = "s3cret-Pa55/w@rd"
	srv.EnableAuth(t, password)
	userinfo := url.UserPassword("root", password).String()
	good := "etcd://" + userinfo + "@" + srv.Endpoint()
	a := open(t, good, "auth", testTiming)
	l, err := a.Acquire(t.Context(), arbitertest.NodeA, 0)
	if err != nil {
		t.Fatalf("Acquire with the right password: %v", err)
	}
	if _, err := a.Renew(t.Context(), l); err != nil {
		t.Fatalf("Renew with the right password: %v", err)
	}
	secrets := []string{password, url.QueryEscape(password), url.PathEscape(password), userinfo}

	const wrong = "wrong-secret-3f9a"
	for _, tt := range []struct{ name, url string }{
		{"wrong password", "etcd://root:" + wrong + "@" + srv.Endpoint()},
		{"no credentials", "etcd://" + srv.Endpoint()},
		{"unreachable", "etcd://root:" + wrong + "@127.0.0.1:1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(t.Context(), Config{URL: arbiter.DSN(tt.url), Cluster: "auth", Timing: testTiming, OpTimeout: testOpTimeout})
			if !errors.Is(err, arbiter.ErrUnavailable) {
				t.Fatalf("Open: %v, want ErrUnavailable", err)
			}
			arbitertest.NoSecret(t, err, append(secrets, wrong, "root:")...)
			if strings.Contains(tt.url, "@") {
				arbitertest.NoSecret(t, err, tt.url)
			}
			t.Logf("error: %v", err)
		})
	}
	for _, tt := range []struct{ name, url, want string }{
		{"not etcd", "http://root:" + wrong + "@h:2379", "etcd arbiter: URL http://h:2379: want etcd://[user:password@]host:port[,host:port]"},
		{"user without password", "etcd://root@h:2379", "etcd arbiter: URL etcd://h:2379: etcd credentials must be user:password"},
		{"bad port", "etcd://root:" + wrong + "@h:0", `etcd arbiter: URL etcd://h:0: etcd member "h:0": port must be 1..65535`},
		{"path", "etcd://root:" + wrong + "@h:1/x", "etcd arbiter: URL etcd://h:1: expected etcd://[user:password@]host:port[,host:port] with nothing else"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(t.Context(), Config{URL: arbiter.DSN(tt.url), Cluster: "c"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: %v, want it to contain %q", err, tt.want)
			}
			arbitertest.NoSecret(t, err, wrong, "root:")
		})
	}
	cfg := Config{URL: arbiter.DSN(good), Cluster: "c"}
	arbitertest.NoSecret(t, fmt.Errorf("printed Config: %v %+v %#v", cfg, cfg, cfg), secrets...)
	// The server stops under the authenticated client: its errors are
	// scrubbed too.
	srv.Stop(t)
	_, err = a.Renew(t.Context(), l)
	if !errors.Is(err, arbiter.ErrUnavailable) {
		t.Fatalf("Renew with the server stopped: %v", err)
	}
	arbitertest.NoSecret(t, err, secrets...)
}

// The scrubbing itself, for messages a driver could produce.
func TestUnavailableScrubsSecrets(t *testing.T) {
	raw := "etcd://mesh:p%40ss%2Fword@a:2379,b:2379"
	ep, err := parseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	if ep.user != "mesh" || ep.password != "p@ss/word" || len(ep.endpoints) != 2 {
		t.Fatalf("parseURL = %+v", ep)
	}
	a := &Arbiter{secrets: ep.secrets(raw)}
	for _, msg := range []string{
		"dial " + raw + ": refused",
		"auth failed for mesh:p@ss/word@a",
		"auth failed for mesh:p%40ss%2Fword@a",
		"bad password p@ss/word",
	} {
		err := a.unavailable("open", errors.New(msg))
		if !errors.Is(err, arbiter.ErrUnavailable) {
			t.Fatalf("unavailable(%q) = %v", msg, err)
		}
		arbitertest.NoSecret(t, err, "p@ss/word", "p%40ss%2Fword", raw)
	}
}

func TestOpenChecksTiming(t *testing.T) {
	srv := etcdtest.NewServer(t)
	if _, err := Open(t.Context(), Config{URL: arbiter.DSN("etcd://" + srv.Endpoint()), Cluster: "c",
		Timing: arbiter.Timing{TTL: 1500 * time.Millisecond, Renew: 300 * time.Millisecond, Margin: 300 * time.Millisecond}}); err == nil ||
		!strings.Contains(err.Error(), "lease TTL 1.5s is not a whole number of seconds") {
		t.Fatalf("Open with a 1.5 s TTL: %v", err)
	}
	if _, err := Open(t.Context(), Config{URL: arbiter.DSN("etcd://" + srv.Endpoint())}); err == nil || !strings.Contains(err.Error(), "empty cluster name") {
		t.Fatalf("Open without a cluster: %v", err)
	}
	// A server with etcd's default election timeout (1 s) grants no lease
	// shorter than 2 s: a 1 s TTL would silently be 2 s.
	slow := etcdtest.NewServer(t, "--heartbeat-interval=100", "--election-timeout=1000")
	_, err := Open(t.Context(), Config{URL: arbiter.DSN("etcd://" + slow.Endpoint()), Cluster: "c", Timing: testTiming, OpTimeout: testOpTimeout})
	if err == nil || !strings.Contains(err.Error(), "the server grants leases of 2 s when asked for 1 s") {
		t.Fatalf("Open with a TTL below the server's shortest lease: %v", err)
	}
	if errors.Is(err, arbiter.ErrUnavailable) {
		t.Fatalf("a timing mismatch is a configuration error, not unavailability: %v", err)
	}
	open(t, "etcd://"+slow.Endpoint(), "c", arbiter.DefaultTiming())
}

// Two clusters on one etcd are independent leases, each under its own keys,
// and the holder key lives on an etcd lease of the TTL while the epoch key
// has none.
func TestKeysPerCluster(t *testing.T) {
	srv := etcdtest.NewServer(t)
	x := open(t, "etcd://"+srv.Endpoint(), "x", testTiming)
	y := open(t, "etcd://"+srv.Endpoint(), "x/y", testTiming)
	lx, err := x.Acquire(t.Context(), arbitertest.NodeA, 0)
	if err != nil {
		t.Fatal(err)
	}
	ly, err := y.Acquire(t.Context(), arbitertest.NodeB, 0)
	if err != nil {
		t.Fatalf("a lease on another cluster blocked this one: %v", err)
	}
	if lx.Epoch != 1 || ly.Epoch != 1 {
		t.Fatalf("epochs %d, %d: want 1 on each cluster", lx.Epoch, ly.Epoch)
	}
	r, err := x.client.Load().Get(t.Context(), KeyPrefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range r.Kvs {
		got[string(kv.Key)] = string(kv.Value)
		ttl, err := x.client.Load().TimeToLive(t.Context(), clientv3.LeaseID(kv.Lease))
		switch {
		case strings.HasSuffix(string(kv.Key), "/epoch") && kv.Lease != 0:
			t.Errorf("%s is on an etcd lease: the epoch must outlive every tenure", kv.Key)
		case strings.HasSuffix(string(kv.Key), "/holder") && (err != nil || ttl.GrantedTTL != 1):
			t.Errorf("%s: etcd lease %+v, %v; want a granted TTL of 1 s", kv.Key, ttl, err)
		}
	}
	want := map[string]string{
		"mesh/authority/x/epoch": "1 " + arbitertest.NodeA, "mesh/authority/x/holder": "1 " + arbitertest.NodeA,
		"mesh/authority/x/y/epoch": "1 " + arbitertest.NodeB, "mesh/authority/x/y/holder": "1 " + arbitertest.NodeB,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	// Release keeps the epoch and forgets the holder.
	if err := x.Release(t.Context(), lx); err != nil {
		t.Fatal(err)
	}
	if st, err := x.Observe(t.Context()); err != nil || st != (arbiter.State{Epoch: 1}) {
		t.Fatalf("Observe after Release: %+v, %v; want free at epoch 1", st, err)
	}
}

// waitHolderKeyGone polls until etcd has revoked the holder key's lease.
func waitHolderKeyGone(t *testing.T, a *Arbiter) {
	t.Helper()
	for limit := time.Now().Add(10 * testTiming.TTL); ; {
		r, err := a.client.Load().Get(t.Context(), a.holderKey)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Kvs) == 0 {
			return
		}
		if time.Now().After(limit) {
			t.Fatalf("the holder key outlived its lease by 10 TTLs")
		}
		time.Sleep(testTiming.TTL / 10)
	}
}

// A lease that etcd let expire while nobody took it is renewed under a new
// etcd lease at the same epoch, and released likewise; a released one is
// never renewed.
func TestRenewAfterExpiryNobodyTook(t *testing.T) {
	srv := etcdtest.NewServer(t)
	a := open(t, "etcd://"+srv.Endpoint(), "expiry", testTiming)
	l, err := a.Acquire(t.Context(), arbitertest.NodeA, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitHolderKeyGone(t, a)
	if st, err := a.Observe(t.Context()); err != nil || st.Held() || st.Holder != arbitertest.NodeA || st.Epoch != l.Epoch {
		t.Fatalf("Observe after expiry: %+v, %v; want %s, epoch %d, not held", st, err, arbitertest.NodeA, l.Epoch)
	}
	start := time.Now()
	r, err := a.Renew(t.Context(), l)
	if err != nil || r.Epoch != l.Epoch || r.Deadline.Before(start) {
		t.Fatalf("Renew after expiry: %+v, %v", r, err)
	}
	if st, err := a.Observe(t.Context()); err != nil || !st.Held() || st.Holder != arbitertest.NodeA || st.Epoch != l.Epoch {
		t.Fatalf("Observe after the renewal: %+v, %v; want %s holding epoch %d", st, err, arbitertest.NodeA, l.Epoch)
	}
	waitHolderKeyGone(t, a)
	if err := a.Release(t.Context(), r); err != nil {
		t.Fatalf("Release after expiry: %v", err)
	}
	if _, err := a.Renew(t.Context(), r); !errors.Is(err, arbiter.ErrLeaseLost) {
		t.Fatalf("Renew after Release: %v, want ErrLeaseLost", err)
	}
	if st, err := a.Observe(t.Context()); err != nil || st != (arbiter.State{Epoch: l.Epoch}) {
		t.Fatalf("Observe after Release: %+v, %v; want free at epoch %d", st, err, l.Epoch)
	}
}

// With authentication on, a restart of the server forgets the token the
// client logged in with, and etcd 3.4 leaves requests carrying it
// unanswered instead of refusing them. The arbiter logs in again on a new
// client, so the holder renews within a few attempts of the restart.
func TestAuthServerRestartedHolderRenews(t *testing.T) {
	srv := etcdtest.NewServer(t)
	const password = "s3cret-pw"
	srv.EnableAuth(t, password)
	timing := arbiter.Timing{TTL: 2 * time.Second, Renew: 500 * time.Millisecond, Margin: 300 * time.Millisecond}
	a := open(t, "etcd://"+url.UserPassword("root", password).String()+"@"+srv.Endpoint(), "auth-restart", timing)
	l, err := a.Acquire(t.Context(), arbitertest.NodeA, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	srv.Start(t)
	var errs []error
	for range 10 {
		r, err := a.Renew(t.Context(), l)
		if err == nil {
			if r.Epoch != l.Epoch || r.Holder != l.Holder {
				t.Fatalf("renewed %+v, want the lease %+v", r, l)
			}
			t.Logf("renewed after %d failed renewals and %d new logins: %v", len(errs), a.relogins.Load(), errs)
			if a.relogins.Load() == 0 {
				t.Error("renewed without a new login: the scenario tests nothing")
			}
			return
		}
		arbitertest.NoSecret(t, err, password)
		errs = append(errs, err)
		time.Sleep(timing.Renew / 2)
	}
	t.Fatalf("the holder never renewed after the server restarted: %v", errs)
}
