package cluster_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeMetrics fetches n's /metrics in the text format, checks it with
// client_golang's linter and, when Debian's prometheus package put promtool
// on the PATH, with `promtool check metrics`, and returns the parsed
// families.
func scrapeMetrics(t *testing.T, n *node) (map[string]*dto.MetricFamily, error) {
	t.Helper()
	resp, err := http.Get(n.http + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil || len(problems) > 0 {
		t.Fatalf("%s: lint of /metrics: %v %v", n.name, err, problems)
	}
	if path, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(path, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: promtool check metrics: %v\n%s", n.name, err, out)
		}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(bytes.NewReader(body))
}

// sample returns the value of the sample of name whose labels include want
// (name=value pairs); ok is false when there is none.
func sample(mfs map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
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
		if m.Counter != nil {
			return m.GetCounter().GetValue(), true
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

// expect checks samples of one scrape: name, labels..., want.
type expect struct {
	name   string
	labels []string
	want   float64
}

func checkMetrics(mfs map[string]*dto.MetricFamily, exps ...expect) error {
	for _, e := range exps {
		got, ok := sample(mfs, e.name, e.labels...)
		if !ok || got != e.want {
			return fmt.Errorf("%s%v = %v (present %v), want %v", e.name, e.labels, got, ok, e.want)
		}
	}
	return nil
}

// checkJSONLog checks that every line of one run of a node is a JSON object
// and that every runtime line carries a transition, and returns the
// transitions seen.
func checkJSONLog(t *testing.T, name, log string) map[string]bool {
	t.Helper()
	transitions := map[string]bool{}
	lines := 0
	for sc := bufio.NewScanner(strings.NewReader(log)); sc.Scan(); {
		if sc.Text() == "" {
			continue
		}
		lines++
		var obj map[string]any
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("%s logged a line that is not JSON: %q (%v)", name, sc.Text(), err)
		}
		msg, _ := obj["msg"].(string)
		if !strings.HasPrefix(msg, "[mesh-rt ") {
			continue // the test app's own lines
		}
		tr, _ := obj["transition"].(string)
		if tr == "" {
			t.Fatalf("%s logged a runtime line without a transition: %s", name, sc.Text())
		}
		transitions[tr] = true
	}
	if lines == 0 {
		t.Fatalf("%s logged nothing", name)
	}
	return transitions
}

// A real pair, scraped on both nodes before and after a SIGKILL of the
// primary and after the old primary's fenced restart, logging JSON: the
// role, epoch, promotion, fencing and record metrics change as the
// failover says they must, the output passes the linters, and every line
// either node writes is JSON, every runtime line with its transition.
func TestMetricsAndJSONLogsThroughSIGKILLFailover(t *testing.T) {
	h := newHarness(t)
	jsonLogs := "MESH_LOG_FORMAT=json"
	p := h.start("primary", "127.0.0.1", "primary", jsonLogs, "TESTAPP_HTTP_ADDR="+httpAddr(t))
	s := h.start("standby", "::1", "standby", jsonLogs, "TESTAPP_HTTP_ADDR="+httpAddr(t))
	h.waitRecord(s, addKey, 15*time.Second, completed)
	h.waitAuthority(s, "standby", 0, 1, 5*time.Second)

	const requests = 3
	for i := range requests {
		resp, err := http.Get(p.http + "/one")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d to the primary: %d", i, resp.StatusCode)
		}
	}
	// Both nodes hold the startup work and the three route records.
	records := func(n float64) []expect {
		return []expect{{"mesh_records", []string{"kind", "route", "phase", "completed"}, n},
			{"mesh_records", []string{"kind", "work", "phase", "completed"}, 1}}
	}
	h.eventually(10*time.Second, func() error {
		pm, err := scrapeMetrics(t, p)
		if err != nil {
			return err
		}
		if err := checkMetrics(pm, append(records(requests),
			expect{"mesh_cluster_role", []string{"role", "primary"}, 1},
			expect{"mesh_cluster_role", []string{"role", "standby"}, 0},
			expect{"mesh_promotion_epoch", nil, 0},
			expect{"mesh_promotions_total", nil, 0},
			expect{"mesh_membership_size", nil, 2},
			expect{"mesh_peer_link_state", []string{"peer", s.name, "state", "connected"}, 1},
			expect{"mesh_route_requests_total", []string{"outcome", "executed", "status_class", "2xx"}, requests},
		)...); err != nil {
			return fmt.Errorf("primary: %w", err)
		}
		sm, err := scrapeMetrics(t, s)
		if err != nil {
			return err
		}
		if err := checkMetrics(sm, append(records(requests),
			expect{"mesh_cluster_role", []string{"role", "standby"}, 1},
			expect{"mesh_promotion_epoch", nil, 0},
			expect{"mesh_promotions_total", nil, 0},
			expect{"mesh_membership_size", nil, 2},
			expect{"mesh_peer_link_state", []string{"peer", p.name, "state", "connected"}, 1},
		)...); err != nil {
			return fmt.Errorf("standby: %w", err)
		}
		return nil
	})

	p.proc.Kill()
	h.waitAuthority(s, "primary", 1, 0, 5*time.Second)
	if _, err := scrapeMetrics(t, p); err == nil {
		t.Fatal("the killed primary still answers /metrics")
	}
	killedLog := p.proc.Log()
	h.eventually(5*time.Second, func() error {
		sm, err := scrapeMetrics(t, s)
		if err != nil {
			return err
		}
		return checkMetrics(sm, append(records(requests),
			expect{"mesh_cluster_role", []string{"role", "primary"}, 1},
			expect{"mesh_cluster_role", []string{"role", "standby"}, 0},
			expect{"mesh_promotion_epoch", nil, 1},
			expect{"mesh_promotions_total", nil, 1},
			expect{"mesh_fencings_total", nil, 0},
			expect{"mesh_membership_size", nil, 1},
			expect{"mesh_peer_link_state", []string{"peer", p.name, "state", "disconnected"}, 1},
		)...)
	})

	// The old primary restarts with its original environment and is fenced.
	h.restart(p)
	h.waitAuthority(p, "standby", 1, 1, 10*time.Second)
	h.eventually(10*time.Second, func() error {
		pm, err := scrapeMetrics(t, p)
		if err != nil {
			return err
		}
		if err := checkMetrics(pm, append(records(requests),
			expect{"mesh_cluster_role", []string{"role", "standby"}, 1},
			expect{"mesh_promotion_epoch", nil, 1},
			expect{"mesh_promotions_total", nil, 0},
			expect{"mesh_fencings_total", nil, 1},
			expect{"mesh_membership_size", nil, 2},
		)...); err != nil {
			return fmt.Errorf("restarted primary: %w", err)
		}
		sm, err := scrapeMetrics(t, s)
		if err != nil {
			return err
		}
		return checkMetrics(sm,
			expect{"mesh_cluster_role", []string{"role", "primary"}, 1},
			expect{"mesh_promotions_total", nil, 1},
			expect{"mesh_fencings_total", nil, 0},
			expect{"mesh_peer_link_state", []string{"peer", p.name, "state", "connected"}, 1},
		)
	})

	checkJSONLog(t, "killed primary", killedLog)
	if tr := checkJSONLog(t, "standby", s.proc.Log()); !tr["automatic_promotion"] || !tr["promote"] || !tr["node_down"] {
		t.Errorf("standby's JSON log transitions %v, want node_down, automatic_promotion and promote", tr)
	}
	h.eventually(5*time.Second, func() error {
		if tr := checkJSONLog(t, "restarted primary", p.proc.Log()); !tr["fenced_rejoin"] {
			return fmt.Errorf("restarted primary's JSON log transitions %v, want fenced_rejoin", tr)
		}
		return nil
	})
}
