package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/arbiter"
	"meshgo.dev/mesh/meshtest/arbitertest"
	"meshgo.dev/mesh/meshtest/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testTiming is short so that expiry takes well under a second; the margin
// is generous because the database's clock and a busy test machine's
// scheduling are both in play.
var testTiming = arbiter.Timing{TTL: 600 * time.Millisecond, Renew: 100 * time.Millisecond, Margin: 200 * time.Millisecond}

func open(t *testing.T, dsn, cluster string, timing arbiter.Timing) *Arbiter {
	t.Helper()
	return arbitertest.Open(t, Open, Config{URL: arbiter.DSN(dsn), Cluster: cluster, Timing: timing, OpTimeout: 5 * time.Second})
}

func setup(t *testing.T, dsn string) arbitertest.Setup {
	return arbitertest.RealClock(open(t, dsn, "conformance", testTiming), open(t, dsn, "conformance", testTiming), testTiming.TTL)
}

func TestConformance(t *testing.T) {
	arbitertest.Run(t, func(t *testing.T) arbitertest.Setup { return setup(t, pgtest.New(t)) })
}

// The server stops (pg_ctl stop) under a held lease and starts again.
func TestConformanceServerStopped(t *testing.T) {
	arbitertest.RunUnavailable(t, func(t *testing.T) arbitertest.Setup {
		srv := pgtest.NewServer(t)
		s := setup(t, srv.URL())
		s.Break = func() { srv.Stop(t) }
		s.Heal = func() { srv.Start(t) }
		return s
	})
}

// password returns the password of a connection URL.
func password(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	return pw
}

// With the server stopped, the holder cannot renew (ErrUnavailable, lease
// unchanged), nobody can acquire, and once the server is back the other node
// wins only after the holder's local deadline has passed.
func TestServerStoppedHolderStepsDownFirst(t *testing.T) {
	srv := pgtest.NewServer(t)
	timing := arbiter.Timing{TTL: 4 * time.Second, Renew: time.Second, Margin: 500 * time.Millisecond}
	a := open(t, srv.URL(), "stop", timing)
	b := open(t, srv.URL(), "stop", timing)
	l, err := a.Acquire(t.Context(), arbitertest.NodeA, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	r, err := a.Renew(t.Context(), l)
	if !errors.Is(err, arbiter.ErrUnavailable) {
		t.Fatalf("Renew with the server stopped: %v, want ErrUnavailable", err)
	}
	arbitertest.NoSecret(t, err, srv.URL(), password(t, srv.URL()))
	if r != l {
		t.Fatalf("a failed Renew changed the lease: %+v from %+v", r, l)
	}
	if _, err := b.Acquire(t.Context(), arbitertest.NodeB, l.Epoch); !errors.Is(err, arbiter.ErrUnavailable) {
		t.Fatalf("Acquire with the server stopped: %v, want ErrUnavailable", err)
	}
	srv.Start(t)
	back := time.Now()
	if !back.Before(l.Deadline) {
		t.Logf("the server took until after the holder's deadline to restart: the race below is not exercised")
	}
	// B polls (arbitertest.AwaitPassed) for the lease, for at most 5 TTLs.
	arbitertest.AwaitPassed(t, a, b, l, timing.TTL)
}

func TestOpenErrorsHideCredentials(t *testing.T) {
	good := pgtest.New(t)
	u, err := url.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	const wrong = "wrong-secret-3f9a"
	u.User = url.UserPassword(u.User.Username(), wrong)
	badPassword := u.String()
	u.Host = "127.0.0.1:1" // nothing listens on port 1
	unreachable := u.String()
	for _, tt := range []struct{ name, dsn string }{
		{"wrong password", badPassword},
		{"unreachable", unreachable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(t.Context(), Config{URL: arbiter.DSN(tt.dsn), Cluster: "c", OpTimeout: 5 * time.Second})
			if !errors.Is(err, arbiter.ErrUnavailable) {
				t.Fatalf("Open: %v, want ErrUnavailable", err)
			}
			arbitertest.NoSecret(t, err, tt.dsn, wrong, password(t, good))
			t.Logf("error: %v", err)
		})
	}
	for _, tt := range []struct{ name, dsn, want string }{
		{"not postgres", "mysql://u:" + wrong + "@h/db", "connection string mysql://h: want postgres:// or postgresql://"},
		{"bad URL", "postgres://u:" + wrong + "@h:notaport/db", "postgres arbiter: connection string postgres://h:notaport:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(t.Context(), Config{URL: arbiter.DSN(tt.dsn), Cluster: "c"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: %v, want it to contain %q", err, tt.want)
			}
			arbitertest.NoSecret(t, err, tt.dsn, wrong)
		})
	}
	cfg := Config{URL: arbiter.DSN(badPassword), Cluster: "c"}
	arbitertest.NoSecret(t, fmt.Errorf("printed Config: %v %+v %#v", cfg, cfg, cfg), badPassword, wrong)
	if _, err := Open(t.Context(), Config{URL: arbiter.DSN(good)}); err == nil || !strings.Contains(err.Error(), "empty cluster name") {
		t.Fatalf("Open without a cluster: %v", err)
	}
}

// Clients opening at once on an empty database create the table once; other
// clusters' rows in the same table are independent leases.
func TestTableSharedByClusters(t *testing.T) {
	dsn := pgtest.New(t)
	var wg sync.WaitGroup
	clients := make([]*Arbiter, 4)
	errs := make([]error, 4)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients[i], errs[i] = Open(context.Background(), Config{URL: arbiter.DSN(dsn), Cluster: []string{"x", "y"}[i%2], Timing: testTiming, OpTimeout: 5 * time.Second})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open %d: %v", i, err)
		}
		t.Cleanup(clients[i].Close)
	}
	lx, err := clients[0].Acquire(t.Context(), arbitertest.NodeA, 0)
	if err != nil {
		t.Fatal(err)
	}
	ly, err := clients[1].Acquire(t.Context(), arbitertest.NodeB, 0)
	if err != nil {
		t.Fatalf("a lease on another cluster blocked this one: %v", err)
	}
	if lx.Epoch != 1 || ly.Epoch != 1 {
		t.Fatalf("epochs %d, %d: want 1 on each cluster", lx.Epoch, ly.Epoch)
	}
	var rows int
	if err := clients[0].pool.QueryRow(t.Context(), `SELECT count(*) FROM mesh_authority`).Scan(&rows); err != nil || rows != 2 {
		t.Fatalf("mesh_authority rows: %d, %v; want one per cluster", rows, err)
	}
	// Expiry is the database's: now() + TTL at the time of the write.
	var ttl time.Duration
	if err := clients[0].pool.QueryRow(t.Context(), `SELECT (extract(epoch FROM expires_at - updated_at) * 1000000)::bigint FROM mesh_authority WHERE cluster = 'x'`).Scan(&ttl); err != nil {
		t.Fatal(err)
	}
	if ttl*time.Microsecond != testTiming.TTL {
		t.Fatalf("expires_at - updated_at = %v, want the TTL %v", ttl*time.Microsecond, testTiming.TTL)
	}
}
