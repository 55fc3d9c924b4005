// Package cluster_test runs real node processes on loopback and checks them
// only through `meshc cluster ... --json`, the way an operator would.
package cluster_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/meshtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	_ = meshtest.RemoveBuiltBinaries()
	os.Exit(code)
}

const cookie = "e2e-cluster-7f3a-Lr4Kc8Nw3Tb6Hp1Zs5Jd0Fg2"

type statusDoc struct {
	Target     string `json:"target"`
	Membership struct {
		LocalNode string   `json:"local_node"`
		Nodes     []string `json:"nodes"`
		PeerNodes []string `json:"peer_nodes"`
	} `json:"membership"`
	Authority struct {
		Role       string `json:"cluster_role"`
		Epoch      uint64 `json:"promotion_epoch"`
		Health     string `json:"replication_health"`
		SafetyMode string `json:"safety_mode"`
	} `json:"authority"`
	Peers []struct {
		Node      string  `json:"node"`
		LinkState string  `json:"link_state"`
		Role      *string `json:"cluster_role"`
		Epoch     *uint64 `json:"promotion_epoch"`
		AgeMS     *int64  `json:"heartbeat_age_ms"`
	} `json:"peers"`
	Readiness *struct {
		Ready  bool    `json:"ready"`
		Reason *string `json:"reason"`
	} `json:"readiness"`
}

type recordDoc struct {
	RequestKey       string `json:"request_key"`
	PayloadHash      string `json:"payload_hash"`
	AttemptID        string `json:"attempt_id"`
	Phase            string `json:"phase"`
	Result           string `json:"result"`
	IngressNode      string `json:"ingress_node"`
	OwnerNode        string `json:"owner_node"`
	ReplicaNode      string `json:"replica_node"`
	ReplicationCount uint64 `json:"replication_count"`
	ReplicaStatus    string `json:"replica_status"`
	ClusterRole      string `json:"cluster_role"`
	PromotionEpoch   uint64 `json:"promotion_epoch"`
	Health           string `json:"replication_health"`
	ExecutionNode    string `json:"execution_node"`
	RoutedRemotely   bool   `json:"routed_remotely"`
	FellBackLocally  bool   `json:"fell_back_locally"`
	Error            string `json:"error"`
	RuntimeName      string `json:"declared_handler_runtime_name"`
}

type listDoc struct {
	Target       string      `json:"target"`
	TotalRecords int         `json:"total_records"`
	Truncated    bool        `json:"truncated"`
	Records      []recordDoc `json:"records"`
}

type entryDoc struct {
	Sequence   uint64  `json:"sequence"`
	Transition string  `json:"transition"`
	RequestKey *string `json:"request_key"`
	AttemptID  *string `json:"attempt_id"`
	OwnerNode  *string `json:"owner_node"`
	Role       *string `json:"cluster_role"`
	Epoch      *uint64 `json:"promotion_epoch"`
	Reason     *string `json:"reason"`
	Metadata   []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"metadata"`
}

func (e entryDoc) meta(k string) string {
	for _, kv := range e.Metadata {
		if kv.Key == k {
			return kv.Value
		}
	}
	return ""
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

type diagDoc struct {
	Target    string     `json:"target"`
	Total     int        `json:"total_entries"`
	Dropped   uint64     `json:"dropped_entries"`
	Capacity  int        `json:"buffer_capacity"`
	Truncated bool       `json:"truncated"`
	Entries   []entryDoc `json:"entries"`
}

func (d diagDoc) find(transition, key string) []entryDoc {
	var out []entryDoc
	for _, e := range d.Entries {
		if e.Transition == transition && (key == "" || str(e.RequestKey) == key) {
			out = append(out, e)
		}
	}
	return out
}

// env of one node process; nothing is inherited from the test.
type node struct {
	name string // full node name
	env  []string
	proc *meshtest.Process
	http string // base URL when an HTTP address was given
}

type harness struct {
	t        *testing.T
	app      string
	meshcBin string
	port     int
	dir      string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return &harness{t: t, app: meshtest.BuildBinary(t, "./e2e/testapp"), meshcBin: meshtest.BuildBinary(t, "./cmd/meshc"),
		port: meshtest.FreePort(t), dir: meshtest.ArtifactDir(t)}
}

// withOwner picks a cluster port at which the startup key of work.Add is
// placed on the node named owner ("primary" or "standby").
func (h *harness) withOwner(owner string) {
	h.t.Helper()
	for range 200 {
		p := meshtest.FreePort(h.t)
		members := []string{fmt.Sprintf("primary@127.0.0.1:%d", p), fmt.Sprintf("standby@[::1]:%d", p)}
		want := members[0]
		if owner == "standby" {
			want = members[1]
		}
		if continuity.Place("startup::work.Add", members).Owner == want {
			h.port = p
			return
		}
	}
	h.t.Fatal("no port places startup::work.Add as wanted")
}

func (h *harness) nodeEnv(name, host, role string, extra ...string) (string, []string) {
	hostPart := host
	if strings.Contains(host, ":") {
		hostPart = "[" + host + "]"
	}
	full := fmt.Sprintf("%s@%s:%d", name, hostPart, h.port)
	env := []string{
		"MESH_CLUSTER_COOKIE=" + cookie, "MESH_DISCOVERY_SEED=localhost",
		fmt.Sprintf("MESH_CLUSTER_PORT=%d", h.port), "MESH_NODE_NAME=" + full,
		"MESH_CONTINUITY_ROLE=" + role, "MESH_STATE_DIR=" + h.dir + "/state-" + name,
		"MESH_DISCOVERY_INTERVAL_MS=1000", "MESH_STARTUP_WORK_DELAY_MS=500",
		"HOME=" + h.dir, "PATH=" + os.Getenv("PATH"),
	}
	// A process sees the first of duplicate variables, so extra values
	// replace defaults instead of being appended after them.
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range env {
			if strings.HasPrefix(old, k+"=") {
				env[i], replaced = kv, true
			}
		}
		if !replaced {
			env = append(env, kv)
		}
	}
	return full, env
}

func (h *harness) start(name, host, role string, extra ...string) *node {
	h.t.Helper()
	full, env := h.nodeEnv(name, host, role, extra...)
	n := &node{name: full, env: env}
	for _, kv := range extra {
		if addr, ok := strings.CutPrefix(kv, "TESTAPP_HTTP_ADDR="); ok {
			n.http = "http://" + addr
		}
	}
	n.proc = meshtest.StartProcess(h.t, name, h.app, env, "")
	// Every node of the suite: its log must never contain the cookie.
	h.t.Cleanup(func() {
		if strings.Contains(n.proc.Log(), cookie) {
			h.t.Errorf("%s logged the cluster cookie (log %s)", n.name, n.proc.LogPath())
		}
	})
	h.waitReady(n)
	return n
}

// restart starts n again from its original environment (killing a run that
// is still going) and waits until the new run is ready.
func (h *harness) restart(n *node) {
	h.t.Helper()
	n.proc.Restart()
	h.waitReady(n)
}

// waitReady waits for the current run's readiness lines: the runtime has
// bootstrapped and, when the node serves HTTP, its listener is bound (the
// test app prints that line only after binding).
func (h *harness) waitReady(n *node) {
	h.t.Helper()
	n.proc.WaitLog(h.t, "[testapp] runtime bootstrap mode=cluster", 10*time.Second)
	if n.http != "" {
		n.proc.WaitLog(h.t, "[testapp] HTTP listening on", 10*time.Second)
	}
}

// meshc runs the CLI and returns stdout, stderr and the exit code.
func (h *harness) meshc(args ...string) (string, string, int) {
	return h.meshcEnv([]string{"MESH_CLUSTER_COOKIE=" + cookie, "HOME=" + h.dir}, args...)
}

// meshcEnv is meshc with the environment given in full.
func (h *harness) meshcEnv(env []string, args ...string) (string, string, int) {
	cmd := exec.Command(h.meshcBin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("run meshc: %v", err)
	}
	if strings.Contains(out.String()+errb.String(), cookie) {
		h.t.Fatalf("meshc printed the cookie: %s %s", out.String(), errb.String())
	}
	return out.String(), errb.String(), code
}

func (h *harness) query(v any, args ...string) error {
	out, errs, code := h.meshc(append(args, "--json")...)
	if code != 0 {
		return fmt.Errorf("meshc %v: exit %d: %s", args, code, strings.TrimSpace(errs))
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("meshc %v: %v: %s", args, err, out)
	}
	return nil
}

func (h *harness) status(n *node) (statusDoc, error) {
	var s statusDoc
	return s, h.query(&s, "cluster", "status", n.name)
}

func (h *harness) list(n *node) (listDoc, error) {
	var l listDoc
	return l, h.query(&l, "cluster", "continuity", n.name)
}

func (h *harness) record(n *node, key string) (recordDoc, error) {
	var r struct {
		Record recordDoc `json:"record"`
	}
	err := h.query(&r, "cluster", "continuity", n.name, key)
	return r.Record, err
}

func (h *harness) diagnostics(n *node) (diagDoc, error) {
	var d diagDoc
	return d, h.query(&d, "cluster", "diagnostics", n.name)
}

func (h *harness) eventually(timeout time.Duration, f func() error) {
	h.t.Helper()
	meshtest.Eventually(h.t, timeout, 100*time.Millisecond, f)
}

func (h *harness) waitAuthority(n *node, role string, epoch uint64, peers int, timeout time.Duration) statusDoc {
	h.t.Helper()
	var st statusDoc
	h.eventually(timeout, func() error {
		var err error
		if st, err = h.status(n); err != nil {
			return err
		}
		if st.Authority.Role != role || st.Authority.Epoch != epoch || len(st.Membership.PeerNodes) != peers {
			return fmt.Errorf("%s: role %s epoch %d peers %v", n.name, st.Authority.Role, st.Authority.Epoch, st.Membership.PeerNodes)
		}
		return nil
	})
	return st
}

func (h *harness) waitRecord(n *node, key string, timeout time.Duration, check func(recordDoc) error) recordDoc {
	h.t.Helper()
	var rec recordDoc
	h.eventually(timeout, func() error {
		var err error
		if rec, err = h.record(n, key); err != nil {
			return err
		}
		return check(rec)
	})
	return rec
}

func completed(r recordDoc) error {
	if r.Phase != "completed" || r.Result != "succeeded" {
		return fmt.Errorf("record %s is %s/%s", r.RequestKey, r.Phase, r.Result)
	}
	return nil
}

func pendingMirrored(r recordDoc) error {
	if r.Phase != "submitted" || r.ReplicaStatus != "mirrored" {
		return fmt.Errorf("record %s is %s %s", r.RequestKey, r.Phase, r.ReplicaStatus)
	}
	return nil
}
