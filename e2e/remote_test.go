package e2e

// TestVerifyRemote runs scripts/verify-remote.sh against a local pair of the
// reference backend (examples/reference-backend) and proves it read-only:
// both nodes' status, continuity records and diagnostics are the same after
// the run as before it.

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/meshtest"
	"meshgo.dev/mesh/meshtest/pgtest"
)

const remoteCookie = "verify-remote-e2e-cookie-0123456789abcdef"

// remotePair is a local pair of the reference backend.
type remotePair struct {
	meshc        string
	nodes, bases [2]string
}

func startRemotePair(t *testing.T) remotePair {
	t.Helper()
	db := pgtest.New(t)
	meshc := starterMeshc(t)
	bin := exampleBinary(t, "reference-backend")
	example := filepath.Join(starterRoot(t), "examples", "reference-backend")
	if out, code := starterCmd(t, "remote-migrate", example, append(starterEnv(), "DATABASE_URL="+db), meshc, "migrate", ".", "up"); code != 0 {
		t.Fatalf("meshc migrate . up: exit %d\n%s", code, out)
	}
	port := meshtest.FreePort(t)
	state := t.TempDir()
	p := remotePair{meshc: meshc}
	for i, n := range []struct{ name, host, role string }{
		{"backend-primary", "127.0.0.1", "primary"}, {"backend-standby", "[::1]", "standby"},
	} {
		http := meshtest.FreePort(t)
		p.nodes[i] = fmt.Sprintf("%s@%s:%d", n.name, n.host, port)
		p.bases[i] = fmt.Sprintf("http://127.0.0.1:%d", http)
		env := append(starterEnv(), "DATABASE_URL="+db, fmt.Sprintf("PORT=%d", http),
			"MESH_CLUSTER_COOKIE="+remoteCookie, "MESH_NODE_NAME="+p.nodes[i], "MESH_DISCOVERY_SEED=localhost",
			fmt.Sprintf("MESH_CLUSTER_PORT=%d", port), "MESH_CONTINUITY_ROLE="+n.role,
			"MESH_DISCOVERY_INTERVAL_MS=500", "MESH_STARTUP_WORK_DELAY_MS=500",
			"MESH_STATE_DIR="+filepath.Join(state, n.name))
		proc := meshtest.StartProcess(t, n.name, bin, env, "")
		proc.WaitLog(t, fmt.Sprintf("[reference-backend] HTTP server starting on :%d", http), starterStartupTimeout)
	}
	meshtest.Eventually(t, 30*time.Second, 250*time.Millisecond, func() error {
		out, code := p.cluster(t, "pair", "status", p.nodes[0], p.nodes[1])
		if code != 0 {
			return fmt.Errorf("meshc cluster status A B: exit %d: %s", code, out)
		}
		return nil
	})
	return p
}

// cluster runs meshc cluster with the cookie in the environment.
func (p remotePair) cluster(t *testing.T, label string, args ...string) (string, int) {
	t.Helper()
	return starterCmd(t, "remote-"+label, "", append(starterEnv(), "MESH_CLUSTER_COOKIE="+remoteCookie), p.meshc,
		append([]string{"cluster"}, args...)...)
}

// snapshot is what an operator can see of both nodes: status, every record
// and every diagnostics entry.
func (p remotePair) snapshot(t *testing.T) map[string]any {
	t.Helper()
	snap := map[string]any{}
	for _, node := range p.nodes {
		for _, q := range [][]string{{"status", node}, {"continuity", node, "--limit", "1000"}, {"diagnostics", node, "--limit", "1000"}} {
			out, code := p.cluster(t, "snapshot-"+q[0], append(q, "--json")...)
			if code != 0 {
				t.Fatalf("meshc cluster %s: exit %d\n%s", strings.Join(q, " "), code, out)
			}
			var v any
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("meshc cluster %s: %v\n%s", strings.Join(q, " "), err, out)
			}
			switch doc := v.(map[string]any); q[0] {
			case "status":
				// Heartbeat ages and readiness move on their own (a
				// scheduling pause of the host quarantines a node for
				// a moment); role, epoch, health and membership may not.
				delete(doc, "peers")
				delete(doc, "readiness")
			case "diagnostics":
				doc["entries"], doc["total_entries"] = withoutPauseChecks(doc["entries"].([]any))
			}
			snap[q[0]+" "+node] = v
		}
	}
	return snap
}

// withoutPauseChecks drops the runtime's own pause checks from diagnostics
// entries: when the host stalls a process for longer than the pause
// threshold, the node quarantines itself until its peer confirms its
// authority (authority_quarantined with authority_unconfirmed_after_pause,
// then authority_confirmed). That depends on the host's load, not on any
// request, so it is no evidence of what the verifier did. Sequence numbers
// are dropped with them; every other entry is kept in order.
func withoutPauseChecks(entries []any) ([]any, float64) {
	var out []any
	for _, e := range entries {
		entry := e.(map[string]any)
		switch {
		case entry["transition"] == "authority_quarantined" && entry["reason"] == "authority_unconfirmed_after_pause":
			continue
		case entry["transition"] == "authority_confirmed":
			continue
		}
		delete(entry, "sequence")
		out = append(out, entry)
	}
	return out, float64(len(out))
}

func TestVerifyRemote(t *testing.T) {
	p := startRemotePair(t)
	// One finished job gives the pair a record to check by key.
	created := starterExpectStatus(t, "POST", p.bases[0]+"/jobs", `{"kind":"echo","payload":{"n":1}}`, 202)
	var job struct{ ID string }
	if err := json.Unmarshal([]byte(created.body), &job); err != nil || job.ID == "" {
		t.Fatalf("POST /jobs body %q: %v", created.body, err)
	}
	// Wait until the pair is quiet: the job's record and both startup
	// records completed on both nodes, and two snapshots half a second apart
	// the same, so nothing but the verifier could change what the nodes
	// report.
	var before, previous map[string]any
	meshtest.Eventually(t, 30*time.Second, 500*time.Millisecond, func() error {
		before, previous = p.snapshot(t), before
		if !reflect.DeepEqual(before, previous) {
			return errors.New("the nodes' records or diagnostics are still changing")
		}
		for _, node := range p.nodes {
			list := before["continuity "+node].(map[string]any)
			seen := map[any]bool{}
			for _, r := range list["records"].([]any) {
				rec := r.(map[string]any)
				if rec["phase"] != "completed" {
					return fmt.Errorf("%s: %s is %s", node, rec["request_key"], rec["phase"])
				}
				seen[rec["request_key"]] = true
			}
			for _, key := range []string{job.ID, "startup::work.RunJob", "startup::work.RunJobLocal"} {
				if !seen[key] {
					return fmt.Errorf("%s has no record for %s", node, key)
				}
			}
		}
		return nil
	})
	if n := before["continuity "+p.nodes[0]].(map[string]any)["total_records"].(float64); n < 1 {
		t.Fatalf("primary holds %v records before the run; want at least the job's", n)
	}

	env := []string{"MESHC_BIN=" + p.meshc, "MESH_CLUSTER_COOKIE=" + remoteCookie}
	run := runRailScript(t, t.TempDir(), "remote", 5*time.Minute, env, "scripts/verify-remote.sh",
		"--url", p.bases[0], "--url", p.bases[1], "--key", job.ID, p.nodes[0], p.nodes[1])
	requireRailOK(t, run, "remote", nil)
	if strings.Contains(run.output, remoteCookie) {
		t.Error("verify-remote.sh printed the cookie")
	}
	if after := p.snapshot(t); !reflect.DeepEqual(before, after) {
		for k := range before {
			if !reflect.DeepEqual(before[k], after[k]) {
				t.Errorf("%s changed during verify-remote.sh:\nbefore %v\nafter  %v", k, before[k], after[k])
			}
		}
	}

	// The verifier can fail: a key neither node holds fails the request-key
	// phase with exit 1.
	missing := runRailScript(t, t.TempDir(), "remote", 5*time.Minute, env, "scripts/verify-remote.sh",
		"--key", "00000000-0000-4000-8000-000000000000", p.nodes[0], p.nodes[1])
	if missing.exitCode != 1 || missing.phase(t) != "request-key" {
		t.Errorf("unknown key: exit %d, phase %q\n%s", missing.exitCode, missing.phase(t), missing.output)
	}
}

func TestVerifyRemoteUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
	}{
		{[]string{"only-one@127.0.0.1:1"}, []string{"MESH_CLUSTER_COOKIE=" + remoteCookie}},
		{[]string{"a@127.0.0.1:1", "b@127.0.0.1:1"}, []string{"MESH_CLUSTER_COOKIE=", "MESH_CLUSTER_COOKIE_FILE="}},
		{[]string{"--key"}, nil},
	} {
		root := t.TempDir()
		run := runRailScript(t, root, "remote", time.Minute, tc.env, "scripts/verify-remote.sh", tc.args...)
		if run.exitCode != 2 {
			t.Errorf("verify-remote.sh %v: exit %d, want 2\n%s", tc.args, run.exitCode, run.output)
		}
	}
}
