package chaos_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/meshtest"
	"meshgo.dev/mesh/meshtest/chaos"
)

// Timing of the nodes under test. A request may go unanswered for at most
// hungBound: a forward to an unreachable owner gives up after the route
// timeout, and a lost peer is noticed within the peer timeout (twice: once
// by each side) — the rest is scheduling slack on a busy machine.
const (
	heartbeat    = 250 * time.Millisecond
	peerTimeout  = 1500 * time.Millisecond
	routeTimeout = 3000 * time.Millisecond
	hungBound    = routeTimeout + 2*peerTimeout + 2*time.Second
	// readyBound bounds a node's start or restart until it serves HTTP.
	readyBound = 15 * time.Second
	// reformBound bounds the wait for the pair to re-form after a fault.
	reformBound = 30 * time.Second
	// quiesceBound bounds the wait at the end for both nodes to see each
	// other with no pending record.
	quiesceBound = 60 * time.Second
)

// readyLine is what the chaos app logs once it serves HTTP.
const readyLine = "[chaosapp] HTTP listening on"

// node is one process of the pair.
type node struct {
	label string // "a" (started as primary) or "b" (started as standby)
	name  string // node name, name@host:port
	base  string // HTTP base URL the clients use
	proc  *meshtest.Process
}

// pair is the two nodes under test and the way to ask them.
type pair struct {
	t      *testing.T
	meshc  string
	cookie string
	dir    string // artifact directory of the soak
	nodes  [2]*node
}

// newCookie returns 48 random hex characters.
func newCookie(t *testing.T) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// nodeSpec says where one node runs.
type nodeSpec struct {
	label, role    string
	name, peerHost string
	httpAddr       string
	clusterPort    int
	prefix         []string // e.g. ip netns exec <ns>
	env            []string // more environment; a later entry wins
}

// start launches the node described by s and waits until it serves HTTP.
func (p *pair) start(app string, s nodeSpec) *node {
	p.t.Helper()
	env := []string{
		"MESH_CLUSTER_COOKIE=" + p.cookie,
		"MESH_DISCOVERY_SEED=" + s.peerHost,
		fmt.Sprintf("MESH_CLUSTER_PORT=%d", s.clusterPort),
		"MESH_NODE_NAME=" + s.name,
		"MESH_CONTINUITY_ROLE=" + s.role,
		"MESH_STATE_DIR=" + filepath.Join(p.dir, "state-"+s.label),
		"MESH_DISCOVERY_INTERVAL_MS=1000",
		"MESH_STARTUP_WORK_DELAY_MS=500",
		fmt.Sprintf("MESH_HEARTBEAT_INTERVAL_MS=%d", heartbeat.Milliseconds()),
		fmt.Sprintf("MESH_PEER_TIMEOUT_MS=%d", peerTimeout.Milliseconds()),
		fmt.Sprintf("MESH_ROUTE_TIMEOUT_MS=%d", routeTimeout.Milliseconds()),
		// Nothing is evicted during a soak: the checker needs every record.
		"MESH_CONTINUITY_RETAIN_RECORDS=10000000",
		"MESH_DIAGNOSTICS_CAPACITY=4096",
		"CHAOS_HTTP_ADDR=" + s.httpAddr,
		"CHAOS_EFFECT_LOG=" + filepath.Join(p.dir, "effects.jsonl"),
		"HOME=" + p.dir, "PATH=" + os.Getenv("PATH"),
	}
	if store := os.Getenv("CHAOS_CONTINUITY_STORE"); store != "" {
		env = append(env, "MESH_CONTINUITY_STORE="+store) // the durable log: "log"
	}
	env = append(env, s.env...)
	bin, args := app, []string(nil)
	if len(s.prefix) > 0 {
		bin, args = s.prefix[0], append(append([]string(nil), s.prefix[1:]...), app)
	}
	n := &node{label: s.label, name: s.name, base: "http://" + s.httpAddr}
	n.proc = meshtest.StartProcess(p.t, "node-"+s.label, bin, env, "", args...)
	n.proc.WaitLog(p.t, readyLine, readyBound)
	return n
}

// restart starts n again from its original environment and waits until it
// serves HTTP. A node that cannot come back (say, its port was taken) stops
// the soak with the log: that is a harness failure, not a finding.
func (p *pair) restart(n *node) {
	p.t.Helper()
	n.proc.Restart()
	n.proc.WaitLog(p.t, readyLine, readyBound)
}

// meshcRun runs meshc with args and returns stdout, or an error with stderr.
func (p *pair) meshcRun(ctx context.Context, prefix []string, args ...string) ([]byte, error) {
	bin, full := p.meshc, args
	if len(prefix) > 0 {
		bin, full = prefix[0], append(append(append([]string(nil), prefix[1:]...), p.meshc), args...)
	}
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = []string{"MESH_CLUSTER_COOKIE=" + p.cookie, "HOME=" + p.dir}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("meshc %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

func (p *pair) query(n *node, verb string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+2*time.Second)
	defer cancel()
	return p.meshcRun(ctx, nil, "cluster", verb, n.name, "--json", fmt.Sprintf("--timeout-ms=%d", timeout.Milliseconds()))
}

type statusDoc struct {
	Membership struct {
		PeerNodes []string `json:"peer_nodes"`
	} `json:"membership"`
	Authority struct {
		Role  string `json:"cluster_role"`
		Epoch uint64 `json:"promotion_epoch"`
	} `json:"authority"`
}

// status asks n for its authority; a frozen or dead node is an error.
func (p *pair) status(n *node) (chaos.StatusObs, error) {
	asked := time.Now()
	out, err := p.query(n, "status", time.Second)
	if err != nil {
		return chaos.StatusObs{}, err
	}
	var d statusDoc
	if err := json.Unmarshal(out, &d); err != nil {
		return chaos.StatusObs{}, fmt.Errorf("status of %s: %v", n.name, err)
	}
	return chaos.StatusObs{Asked: asked, Time: time.Now(), Node: n.name, Role: d.Authority.Role, Epoch: d.Authority.Epoch, Peers: len(d.Membership.PeerNodes)}, nil
}

// formed reports whether both nodes answer, see each other, and agree on
// one primary at one epoch; it returns both observations.
func (p *pair) formed() ([]chaos.StatusObs, error) {
	var obs []chaos.StatusObs
	for _, n := range p.nodes {
		o, err := p.status(n)
		if err != nil {
			return obs, err
		}
		obs = append(obs, o)
	}
	a, b := obs[0], obs[1]
	if a.Peers != 1 || b.Peers != 1 || a.Epoch != b.Epoch || (a.Role == "primary") == (b.Role == "primary") {
		return obs, fmt.Errorf("not formed: %s %s@%d peers %d; %s %s@%d peers %d",
			a.Node, a.Role, a.Epoch, a.Peers, b.Node, b.Role, b.Epoch, b.Peers)
	}
	return obs, nil
}

// records returns n's continuity records and the raw document, as `meshc
// cluster continuity <node> --json` lists them: the whole list, however long
// (a reply larger than one frame arrives in parts).
func (p *pair) records(n *node) ([]chaos.Record, []byte, error) {
	out, err := p.query(n, "continuity", 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	recs, err := chaos.DecodeRecords(out)
	return recs, out, err
}
