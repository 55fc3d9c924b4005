package cluster

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"meshgo.dev/mesh/internal/operator"
	"meshgo.dev/mesh/internal/wire"
	"meshgo.dev/mesh/meshtest"
)

// scrape gathers the metrics of n.
func scrape(t *testing.T, n *Node) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(func() *Node { return n }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather %s: %v", n.Name(), err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// value returns the value of the sample of name whose labels include want
// (name=value pairs), and whether there is one.
func value(mfs map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func mustValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	v, ok := value(mfs, name, want...)
	if !ok {
		t.Fatalf("no sample %s%v", name, want)
	}
	return v
}

// A pair serving clustered routes, then a failover and a fenced rejoin:
// every metric moves as the node's state and events do, and the output
// passes client_golang's lint.
func TestMetricsOfAPairThroughFailover(t *testing.T) {
	port := freePort(t)
	pcfg := testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
	p := startNode(t, pcfg)
	s := startNode(t, testConfig(t, "standby", "::1", port, RoleStandby))
	eventually(t, 5*time.Second, func() error {
		if len(p.Peers()) != 1 || len(s.Peers()) != 1 || !s.session(p.Name()).isSynced() {
			return fmt.Errorf("not converged")
		}
		return nil
	})
	ss := serveNode(t, s, nil)

	m := scrape(t, s)
	if mustValue(t, m, "mesh_cluster_role", "role", "standby") != 1 || mustValue(t, m, "mesh_cluster_role", "role", "primary") != 0 ||
		mustValue(t, m, "mesh_promotion_epoch") != 0 || mustValue(t, m, "mesh_membership_size") != 2 ||
		mustValue(t, m, "mesh_peer_link_state", "peer", p.Name(), "state", "connected") != 1 ||
		mustValue(t, m, "mesh_promotions_total") != 0 {
		t.Fatalf("standby before failover: %v", m)
	}
	if age := mustValue(t, m, "mesh_peer_heartbeat_age_seconds", "peer", p.Name()); age < 0 || age > 5 {
		t.Fatalf("heartbeat age %v", age)
	}

	// One request the primary owns, sent to the standby: forwarded. The
	// same key again is replayed; with another body it conflicts.
	key := meshtest.ClientKeyOwnedBy(t, routeScope(s, "cluster.ListThings", http.Header{}), "m", s.Members(), p.Name())
	hdr := map[string]string{"Idempotency-Key": key}
	if r, b := get(t, ss.URL+"/things/1", hdr, "one"); r.StatusCode != http.StatusCreated {
		t.Fatalf("forwarded request: %d %s", r.StatusCode, b)
	}
	if r, b := get(t, ss.URL+"/things/1", hdr, "one"); r.StatusCode != http.StatusCreated {
		t.Fatalf("replayed request: %d %s", r.StatusCode, b)
	}
	if r, b := get(t, ss.URL+"/things/1", hdr, "two"); r.StatusCode != http.StatusConflict {
		t.Fatalf("conflicting request: %d %s", r.StatusCode, b)
	}
	m = scrape(t, s)
	for _, c := range []struct {
		outcome, class string
		want           float64
	}{{"forwarded", "2xx", 1}, {"replayed", "2xx", 1}, {"conflict", "4xx", 1}, {"executed", "2xx", 0}} {
		if got := mustValue(t, m, "mesh_route_requests_total", "outcome", c.outcome, "status_class", c.class); got != c.want {
			t.Errorf("route requests %s %s = %v, want %v", c.outcome, c.class, got, c.want)
		}
	}
	for _, c := range []struct {
		outcome string
		want    float64
	}{{"created", 1}, {"duplicate", 1}, {"conflict", 1}} {
		if got := mustValue(t, m, "mesh_submissions_total", "kind", "route", "outcome", c.outcome); got != c.want {
			t.Errorf("route submissions %s = %v, want %v", c.outcome, got, c.want)
		}
	}
	if got := mustValue(t, m, "mesh_route_forward_duration_seconds"); got != 1 {
		t.Errorf("forward latency observations %v, want 1", got)
	}
	if got := mustValue(t, m, "mesh_records", "kind", "route", "phase", "completed"); got != 1 {
		t.Errorf("completed route records %v, want 1", got)
	}
	// A request sent to the primary without a key runs there, after the
	// primary mirrored its record to the standby.
	ps := serveNode(t, p, nil)
	if r, b := get(t, ps.URL+"/things", nil, ""); r.StatusCode != http.StatusCreated {
		t.Fatalf("request to the primary: %d %s", r.StatusCode, b)
	}
	mp := scrape(t, p)
	if got := mustValue(t, mp, "mesh_replica_prepare_duration_seconds"); got < 1 {
		t.Errorf("primary prepare observations %v, want at least 1", got)
	}
	if got := mustValue(t, mp, "mesh_route_requests_total", "outcome", "executed", "status_class", "2xx"); got != 1 {
		t.Errorf("primary executed requests %v, want 1", got)
	}

	kill(t, p)
	eventually(t, 5*time.Second, func() error {
		m = scrape(t, s)
		if v, _ := value(m, "mesh_promotion_epoch"); v != 1 {
			return fmt.Errorf("epoch %v", v)
		}
		return nil
	})
	if mustValue(t, m, "mesh_cluster_role", "role", "primary") != 1 || mustValue(t, m, "mesh_promotions_total") != 1 ||
		mustValue(t, m, "mesh_membership_size") != 1 ||
		mustValue(t, m, "mesh_peer_link_state", "peer", p.Name(), "state", "disconnected") != 1 {
		t.Fatalf("standby after failover: %v", m)
	}

	p2 := startNode(t, pcfg)
	eventually(t, 5*time.Second, func() error {
		m2 := scrape(t, p2)
		if v, _ := value(m2, "mesh_fencings_total"); v != 1 {
			return fmt.Errorf("fencings %v", v)
		}
		if v, _ := value(m2, "mesh_cluster_role", "role", "standby"); v != 1 {
			return fmt.Errorf("old primary not standby")
		}
		return nil
	})

	for _, n := range []*Node{s, p2} {
		problems, err := testutil.CollectAndLint(newCollector(func() *Node { return n }))
		if err != nil || len(problems) > 0 {
			t.Errorf("lint of %s: %v %v", n.Name(), err, problems)
		}
	}
}

// A failed handshake is counted by reason.
func TestMetricsCountHandshakeFailures(t *testing.T) {
	port := freePort(t)
	n := startNode(t, testConfig(t, "solo", "127.0.0.1", port, RolePrimary))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	wrong := []byte("wrong-cookie-9Zx8Cv7Bn6Mq5Wl4Ek3Rj2Th1")
	if _, err := operator.Query(ctx, n.cfg.NodeName, wrong, wire.OperatorQuery{Kind: uint8(operator.KindStatus)}, time.Second); err == nil {
		t.Fatal("query with a wrong cookie answered")
	}
	eventually(t, 3*time.Second, func() error {
		m := scrape(t, n)
		if v, _ := value(m, "mesh_handshake_failures_total", "reason", reasonAuthFailed); v != 1 {
			return fmt.Errorf("authentication failures %v", v)
		}
		if v, _ := value(m, "mesh_handshake_failures_total", "reason", reasonRateLimited); v != 0 {
			return fmt.Errorf("rate limited %v", v)
		}
		return nil
	})
}

// A route the runtime refuses is counted as refused, with its status class.
func TestMetricsCountRefusedRoutes(t *testing.T) {
	n := startNode(t, Config{Logger: testLogger(t)})
	srv := serveNode(t, n, nil)
	if r, b := get(t, srv.URL+"/retry", nil, ""); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("count 3 route on a standalone node: %d %s", r.StatusCode, b)
	}
	m := scrape(t, n)
	if got := mustValue(t, m, "mesh_route_requests_total", "outcome", "refused", "status_class", "5xx"); got != 1 {
		t.Fatalf("refused 5xx = %v", got)
	}
	if _, ok := value(m, "mesh_peer_link_state"); ok {
		t.Fatal("a standalone node exports peer links")
	}
	if got := mustValue(t, m, "mesh_node_info", "mode", "standalone"); got != 1 {
		t.Fatalf("node info %v", got)
	}
}

// The operating guide lists every metric the runtime exports, with its type
// and labels, and nothing else.
func TestMetricsDocumented(t *testing.T) {
	f, err := os.Open("../../website/docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `(mesh_[a-z_]+)` \\| (gauge|counter|histogram) \\| ([^|]*) \\|")
	documented := map[string]string{}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if m := row.FindStringSubmatch(sc.Text()); m != nil {
			documented[m[1]] = m[2] + " " + strings.TrimSpace(strings.ReplaceAll(m[3], "`", ""))
		}
	}
	exported := map[string]string{}
	for _, d := range metricDocs {
		labels := "—"
		if len(d.Labels) > 0 {
			labels = strings.Join(d.Labels, ", ")
		}
		exported[d.Name] = d.Type + " " + labels
	}
	// What a collector describes is what it registers.
	ch := make(chan *prometheus.Desc, 64)
	newCollector(func() *Node { return nil }).Describe(ch)
	close(ch)
	var described []string
	for d := range ch {
		name := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(d.String())
		if name == nil {
			t.Fatalf("descriptor %s", d)
		}
		described = append(described, name[1])
	}
	var names []string
	for name := range exported {
		names = append(names, name)
	}
	sort.Strings(names)
	sort.Strings(described)
	if !slices.Equal(names, described) {
		t.Fatalf("described %v, documented in code %v", described, names)
	}
	for name, want := range exported {
		if got, ok := documented[name]; !ok || got != want {
			t.Errorf("operating.md row of %s: %q, want %q", name, got, want)
		}
	}
	for name := range documented {
		if _, ok := exported[name]; !ok {
			t.Errorf("operating.md lists %s, which is not exported", name)
		}
	}
}

// A running pair exports every documented metric (none is dead).
func TestMetricsAllExportedByAPair(t *testing.T) {
	p, s := pair(t)
	eventually(t, 5*time.Second, func() error {
		m := scrape(t, s)
		for _, d := range metricDocs {
			if _, ok := m[d.Name]; !ok {
				return fmt.Errorf("%s not exported", d.Name)
			}
		}
		return nil
	})
	_ = p
	srv := httptest.NewServer(MetricsHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics handler: %d", resp.StatusCode)
	}
}
