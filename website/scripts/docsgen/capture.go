package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// Names and values the pages show. The pages never show a cookie: the run
// commands leave MESH_CLUSTER_COOKIE out (a reader loads it from the project's
// .env), and should it ever appear in output it is replaced by docsCookie.
const (
	helloName     = "hello"
	clusteredName = "hello-cluster"
	docsPort      = 4370 // the port the pages show (see freeClusterPort)
	docsCookie    = "<cookie>"
	primaryName   = "primary"
	standbyName   = "standby"
	waitBudget    = 30 * time.Second
	pollEvery     = 200 * time.Millisecond
)

// transcript accumulates "$ command" lines and what each command printed.
type transcript struct{ b strings.Builder }

func (t *transcript) cmd(display string, out string) {
	fmt.Fprintf(&t.b, "$ %s\n", display)
	t.b.WriteString(out)
	if out != "" && !strings.HasSuffix(out, "\n") {
		t.b.WriteString("\n")
	}
}

func (t *transcript) bytes() []byte { return []byte(t.b.String()) }

// capturer runs meshc and the generated projects in work/demo and normalises
// what they print.
type capturer struct {
	ctx    context.Context
	root   string // repository root
	meshc  string
	demo   string // where projects are generated
	port   int    // the real cluster port of this run
	cookie string // the real cookie of this run, shown as docsCookie
	files  map[string][]byte
}

// errPortTaken means a node could not bind the chosen cluster port: another
// process took it between the check and the bind.
var errPortTaken = errors.New("cluster port taken")

// capture generates the hello and clustered projects with the checkout's
// meshc, builds them, starts a primary and a standby on loopback and records
// what the operator commands print.
func capture(ctx context.Context, root, work, meshc string) (map[string][]byte, error) {
	// A cookie of its own keeps this run's meshc queries from ever being
	// answered by another cluster on the same port (a concurrent test, say).
	var b [16]byte
	crand.Read(b[:])
	c := &capturer{ctx: ctx, root: root, meshc: meshc, demo: filepath.Join(work, "demo"),
		cookie: "docs-capture-" + hex.EncodeToString(b[:]), files: map[string][]byte{}}
	if err := os.MkdirAll(c.demo, 0o755); err != nil {
		return nil, err
	}

	if err := c.hello(); err != nil {
		return nil, err
	}
	if err := c.clustered(); err != nil {
		return nil, err
	}
	return c.files, nil
}

// hello: meshc init, meshc build, run the binary.
func (c *capturer) hello() error {
	var t transcript
	out, err := c.meshcOK(c.demo, "init", helloName)
	if err != nil {
		return err
	}
	t.cmd("meshc init "+helloName, out)
	c.files["hello-init.txt"] = c.norm(t.bytes())

	dir := filepath.Join(c.demo, helloName)
	t = transcript{}
	t.cmd("cd "+helloName, "")
	out, err = c.meshcOK(dir, "build")
	if err != nil {
		return err
	}
	t.cmd("meshc build", out)
	out, err = c.runOK(dir, nil, 15*time.Second, filepath.Join(dir, helloName))
	if err != nil {
		return err
	}
	t.cmd("./"+helloName, out)
	c.files["hello-build.txt"] = c.norm(t.bytes())
	return nil
}

// clustered: generate and build the clustered scaffold, run a primary and a
// standby, and record the operator commands in the order an operator uses
// them.
func (c *capturer) clustered() error {
	var t transcript
	out, err := c.meshcOK(c.demo, "init", "--clustered", clusteredName)
	if err != nil {
		return err
	}
	t.cmd("meshc init --clustered "+clusteredName, out)
	c.files["clustered-init.txt"] = c.norm(t.bytes())

	dir := filepath.Join(c.demo, clusteredName)
	files, err := listFiles(dir)
	if err != nil {
		return err
	}
	c.files["clustered-files.txt"] = []byte(strings.Join(files, "\n") + "\n")

	t = transcript{}
	t.cmd("cd "+clusteredName, "")
	out, err = c.meshcOK(dir, "build")
	if err != nil {
		return err
	}
	t.cmd("meshc build", out)
	c.files["clustered-build.txt"] = c.norm(t.bytes())

	// The port is checked free, then bound by the nodes a moment later; if
	// another process takes it in between, start over on another one.
	for attempt := 0; ; attempt++ {
		if c.port, err = freeClusterPort(); err != nil {
			return err
		}
		if err = c.pair(dir); err == nil {
			err = c.failover(dir)
		}
		if !errors.Is(err, errPortTaken) || attempt == 2 {
			return err
		}
		fmt.Fprintf(os.Stderr, "docsgen: cluster port %d was taken; retrying on another\n", c.port)
	}
}

// nodeEnv is the environment of one node as the pages show it.
func (c *capturer) nodeEnv(name, role string, extra ...[2]string) [][2]string {
	return append([][2]string{
		{"MESH_CLUSTER_COOKIE", c.cookie},
		{"MESH_DISCOVERY_SEED", "localhost"},
		{"MESH_CLUSTER_PORT", strconv.Itoa(c.port)},
		{"MESH_NODE_NAME", name},
		{"MESH_CONTINUITY_ROLE", role},
	}, extra...)
}

// runCommand renders env and the binary as the shell command the pages show.
func (c *capturer) runCommand(env [][2]string) []byte {
	var b strings.Builder
	for _, kv := range env {
		if kv[0] == "MESH_CLUSTER_COOKIE" {
			continue // loaded from .env, as the page says
		}
		fmt.Fprintf(&b, "%s=%s \\\n", kv[0], shellQuote(kv[1]))
	}
	b.WriteString("./" + clusteredName + "\n")
	return c.norm([]byte(b.String()))
}

// start starts one node of the clustered project. Each node persists its
// authority under the user cache directory; state keeps that inside the
// work directory so runs never share it.
func (c *capturer) start(dir, state string, env [][2]string) (*node, error) {
	var name string
	for _, kv := range env {
		if kv[0] == "MESH_NODE_NAME" {
			name = kv[1]
		}
	}
	env = append(env, [2]string{"XDG_CACHE_HOME", filepath.Join(c.demo, state)})
	return startNode(c.ctx, dir, filepath.Join(dir, clusteredName), env, name)
}

// step runs meshc args and records "$ meshc args" with its output as file.
func (c *capturer) step(dir, file string, procs []*node, args ...string) error {
	out, err := c.meshcOK(dir, args...)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, logTails(procs))
	}
	var t transcript
	t.cmd("meshc "+strings.Join(quoteAll(args), " "), out)
	c.files[file] = c.norm(t.bytes())
	return nil
}

func stopAll(procs []*node) {
	// The last started first: stopping the standby before the primary keeps
	// the primary's exit from causing a promotion.
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
}

// pair runs a primary and a standby with the defaults and records the four
// operator commands in the order an operator uses them.
func (c *capturer) pair(dir string) error {
	primary := fmt.Sprintf("%s@127.0.0.1:%d", primaryName, c.port)
	standby := fmt.Sprintf("%s@[::1]:%d", standbyName, c.port)
	var procs []*node
	defer func() { stopAll(procs) }()

	penv := c.nodeEnv(primary, "primary")
	c.files["clustered-run-primary.txt"] = c.runCommand(penv)
	p, err := c.start(dir, "state-pair", penv)
	if err != nil {
		return err
	}
	procs = append(procs, p)
	// Start the standby once the primary answers, as a person in a second
	// terminal would: the standby dials the seed as it starts.
	if err := c.waitAnswers(primary, procs); err != nil {
		return err
	}
	senv := c.nodeEnv(standby, "standby")
	c.files["clustered-run-standby.txt"] = c.runCommand(senv)
	s, err := c.start(dir, "state-pair", senv)
	if err != nil {
		return err
	}
	procs = append(procs, s)

	// Wait for the pair to form and for every record (the startup work) to
	// reach a terminal phase on both nodes, so the capture is a settled
	// cluster and not a race.
	if err := c.waitPeers(primary, standby, procs); err != nil {
		return err
	}
	keys, err := c.waitSettled(primary, standby, procs)
	if err != nil {
		return err
	}
	// The startup waiter reports the outcome a poll after the record ends.
	if err := c.waitTransition(primary, procs, "startup_completed", "startup_rejected"); err != nil {
		return err
	}
	if err := c.waitTransition(standby, procs, "startup_skipped"); err != nil {
		return err
	}

	// The operator order: status -> continuity list -> one record -> diagnostics.
	steps := []struct {
		file string
		args []string
	}{
		{"cluster-status.txt", []string{"cluster", "status", primary}},
		{"cluster-status-standby-json.txt", []string{"cluster", "status", standby, "--json"}},
		{"cluster-continuity-list.txt", []string{"cluster", "continuity", primary}},
		{"cluster-continuity-record.txt", []string{"cluster", "continuity", standby, keys[0]}},
		{"cluster-diagnostics.txt", []string{"cluster", "diagnostics", primary}},
	}
	for _, st := range steps {
		if err := c.step(dir, st.file, procs, st.args...); err != nil {
			return err
		}
	}
	stopAll(procs)
	// What the app printed (its bootstrap line); the whole logs are kept in
	// the work directory for --keep.
	for _, p := range procs {
		role := strings.SplitN(p.name, "@", 2)[0]
		c.files["clustered-log-"+role+".txt"] = c.norm([]byte(p.appLines()))
		os.WriteFile(filepath.Join(c.demo, "pair-"+role+".log"), []byte(p.log.String()), 0o644)
	}
	return nil
}

// failoverWindow keeps the startup work pending long enough to kill the
// primary while it is in flight.
const failoverWindow = "20000"

// failoverDiscovery is the standby's discovery interval in the failover run.
const failoverDiscovery = "500"

// failover starts a fresh pair whose primary holds the startup work pending
// for 20 s, kills the primary with SIGKILL inside that window, records what
// the standby did, restarts the old primary with its original command and
// records how it rejoined.
func (c *capturer) failover(dir string) error {
	primary := fmt.Sprintf("%s@127.0.0.1:%d", primaryName, c.port)
	standby := fmt.Sprintf("%s@[::1]:%d", standbyName, c.port)
	key := "startup::work.Add"
	var procs []*node
	defer func() { stopAll(procs) }()

	penv := c.nodeEnv(primary, "primary", [2]string{"MESH_STARTUP_WORK_DELAY_MS", failoverWindow})
	c.files["failover-run-primary.txt"] = c.runCommand(penv)
	p, err := c.start(dir, "state-failover", penv)
	if err != nil {
		return err
	}
	procs = append(procs, p)
	if err := c.waitAnswers(primary, procs); err != nil {
		return err
	}
	// The seed localhost may resolve to 127.0.0.1 only, so a restarted
	// primary cannot dial the standby itself: it is found at the standby's
	// next discovery tick. A short interval makes that happen well inside
	// the restarted node's membership wait, before it would run startup work
	// on its own.
	senv := c.nodeEnv(standby, "standby", [2]string{"MESH_DISCOVERY_INTERVAL_MS", failoverDiscovery})
	c.files["failover-run-standby.txt"] = c.runCommand(senv)
	s, err := c.start(dir, "state-failover", senv)
	if err != nil {
		return err
	}
	procs = append(procs, s)

	// The record is mirrored and still pending on both nodes.
	err = c.poll("the startup record to be mirrored and pending", procs, func() (bool, error) {
		for _, target := range []string{primary, standby} {
			rec, err := c.record(target, key)
			if err != nil || rec.Phase != "submitted" || rec.ReplicaStatus != "mirrored" {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if err := c.step(dir, "failover-pending.txt", procs, "cluster", "continuity", primary, key); err != nil {
		return err
	}

	p.kill()
	os.WriteFile(filepath.Join(c.demo, "failover-primary-run1.log"), []byte(p.log.String()), 0o644)
	procs = procs[1:]
	err = c.poll("the standby to promote itself and complete the work", procs, func() (bool, error) {
		rec, err := c.record(standby, key)
		return err == nil && rec.Phase == "completed" && rec.PromotionEpoch == 1, nil
	})
	if err != nil {
		return err
	}
	for _, st := range []struct {
		file string
		args []string
	}{
		{"failover-status.txt", []string{"cluster", "status", standby}},
		{"failover-record.txt", []string{"cluster", "continuity", standby, key}},
		{"failover-diagnostics.txt", []string{"cluster", "diagnostics", standby, "--limit", "5"}},
	} {
		if err := c.step(dir, st.file, procs, st.args...); err != nil {
			return err
		}
	}

	// The old primary comes back with the command it was started with.
	p2, err := c.start(dir, "state-failover", penv)
	if err != nil {
		return err
	}
	procs = append(procs, p2)
	err = c.poll("the old primary to rejoin", procs, func() (bool, error) {
		rec, err := c.record(primary, key)
		if err != nil || rec.Phase != "completed" {
			return false, nil
		}
		var st struct {
			Membership struct {
				PeerNodes []string `json:"peer_nodes"`
			} `json:"membership"`
			Authority struct {
				ClusterRole string `json:"cluster_role"`
			} `json:"authority"`
		}
		if err := c.meshcJSON(&st, "cluster", "status", primary, "--json"); err != nil {
			return false, nil
		}
		return slices.Contains(st.Membership.PeerNodes, standby) && st.Authority.ClusterRole == "standby", nil
	})
	if err != nil {
		return err
	}
	// Fenced before its membership wait ended, the old primary then skips
	// its startup work.
	if err := c.waitTransition(primary, procs, "startup_skipped", "startup_completed", "startup_rejected"); err != nil {
		return err
	}
	for _, st := range []struct {
		file string
		args []string
	}{
		{"rejoin-status.txt", []string{"cluster", "status", primary}},
		{"rejoin-diagnostics.txt", []string{"cluster", "diagnostics", primary}},
	} {
		if err := c.step(dir, st.file, procs, st.args...); err != nil {
			return err
		}
	}
	stopAll(procs)
	for _, p := range procs {
		os.WriteFile(filepath.Join(c.demo, "failover-"+strings.SplitN(p.name, "@", 2)[0]+".log"), []byte(p.log.String()), 0o644)
	}
	return nil
}

// waitTransition polls target's diagnostics until an entry has one of the
// transitions.
func (c *capturer) waitTransition(target string, procs []*node, transitions ...string) error {
	return c.poll(target+" to log "+strings.Join(transitions, " or "), procs, func() (bool, error) {
		var d struct {
			Entries []struct {
				Transition string `json:"transition"`
			} `json:"entries"`
		}
		if err := c.meshcJSON(&d, "cluster", "diagnostics", target, "--json"); err != nil {
			return false, nil
		}
		for _, e := range d.Entries {
			if slices.Contains(transitions, e.Transition) {
				return true, nil
			}
		}
		return false, nil
	})
}

// opRecord is the part of a continuity record the capture waits on.
type opRecord struct {
	Phase          string `json:"phase"`
	ReplicaStatus  string `json:"replica_status"`
	PromotionEpoch uint64 `json:"promotion_epoch"`
}

func (c *capturer) record(target, key string) (opRecord, error) {
	var doc struct {
		Record opRecord `json:"record"`
	}
	err := c.meshcJSON(&doc, "cluster", "continuity", target, key, "--json")
	return doc.Record, err
}

// waitAnswers polls status on target until the node answers.
func (c *capturer) waitAnswers(target string, procs []*node) error {
	return c.poll(target+" to answer meshc cluster status", procs, func() (bool, error) {
		var st struct{}
		return c.meshcJSON(&st, "cluster", "status", target, "--json") == nil, nil
	})
}

// waitPeers polls status on both nodes until each lists the other as a peer.
func (c *capturer) waitPeers(primary, standby string, procs []*node) error {
	want := map[string]string{primary: standby, standby: primary}
	return c.poll("the primary and the standby to see each other", procs, func() (bool, error) {
		for target, peer := range want {
			var st struct {
				Membership struct {
					PeerNodes []string `json:"peer_nodes"`
				} `json:"membership"`
			}
			if err := c.meshcJSON(&st, "cluster", "status", target, "--json"); err != nil {
				return false, nil // not answering yet
			}
			if !slices.Contains(st.Membership.PeerNodes, peer) {
				return false, nil
			}
		}
		return true, nil
	})
}

// waitSettled polls both nodes until they hold the same non-empty set of
// request keys, all terminal, and returns the keys sorted.
func (c *capturer) waitSettled(primary, standby string, procs []*node) ([]string, error) {
	var keys []string
	err := c.poll("the startup work to complete on both nodes", procs, func() (bool, error) {
		var sets [2][]string
		for i, target := range []string{primary, standby} {
			var list struct {
				Records []struct {
					RequestKey string `json:"request_key"`
					Phase      string `json:"phase"`
				} `json:"records"`
			}
			if err := c.meshcJSON(&list, "cluster", "continuity", target, "--json"); err != nil {
				return false, nil
			}
			for _, r := range list.Records {
				if r.Phase != "completed" && r.Phase != "rejected" {
					return false, nil
				}
				sets[i] = append(sets[i], r.RequestKey)
			}
			sort.Strings(sets[i])
		}
		if len(sets[0]) == 0 || strings.Join(sets[0], "\n") != strings.Join(sets[1], "\n") {
			return false, nil
		}
		keys = sets[0]
		return true, nil
	})
	return keys, err
}

func (c *capturer) poll(what string, procs []*node, cond func() (bool, error)) error {
	deadline := time.Now().Add(waitBudget)
	for {
		// A node that exited (a bind failure, say) is checked before the
		// condition, so nothing else answering on its address is mistaken
		// for it.
		for _, p := range procs {
			if p.exited() {
				err := fmt.Errorf("waiting for %s: node %s exited\n%s", what, p.name, logTails(procs))
				if strings.Contains(p.log.String(), "listener bind failed") {
					err = fmt.Errorf("%w: %w", errPortTaken, err)
				}
				return err
			}
		}
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: gave up after %s\n%s", what, waitBudget, logTails(procs))
		}
		select {
		case <-c.ctx.Done():
			return c.ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

func (c *capturer) meshcJSON(v any, args ...string) error {
	cmd := exec.CommandContext(c.ctx, c.meshc, args...)
	cmd.Env = cleanEnv([][2]string{{"MESH_CLUSTER_COOKIE", c.cookie}})
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		return err
	}
	return json.Unmarshal(stdout.Bytes(), v)
}

// meshcOK runs meshc in dir with the documented cookie exported and returns
// its combined output; a non-zero exit is an error that shows the output.
func (c *capturer) meshcOK(dir string, args ...string) (string, error) {
	return c.runOK(dir, [][2]string{{"MESH_CLUSTER_COOKIE", c.cookie}}, 5*time.Minute, c.meshc, args...)
}

func (c *capturer) runOK(dir string, env [][2]string, timeout time.Duration, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv(env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s (in %s): %w\n%s", filepath.Base(bin), strings.Join(args, " "), dir, err, out)
	}
	return string(out), nil
}

var (
	rfc3339Re  = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`)
	logTimeRe  = regexp.MustCompile(`\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?`)
	durationRe = regexp.MustCompile(`\b(in|took|after) \d+(\.\d+)?(ns|µs|us|ms|s)\b`)
	// pollsRe is how many membership polls the startup wait took: timing.
	pollsRe = regexp.MustCompile(`\bpolls=\d+`)
	// heartbeatAgeRe is how long ago a node heard from its peer: timing.
	heartbeatAgeRe = regexp.MustCompile(`\bheartbeat_age_ms(=|": )\d+`)
)

// norm makes output reproducible: the cluster port becomes the documented
// 4370, times become <timestamp>, durations <duration>, membership poll
// counts polls=<n>, and the temporary directories the paths a reader would
// have.
func (c *capturer) norm(b []byte) []byte {
	s := string(b)
	s = strings.ReplaceAll(s, c.cookie, docsCookie)
	s = strings.ReplaceAll(s, c.demo+string(filepath.Separator), "")
	s = strings.ReplaceAll(s, c.demo, ".")
	s = strings.ReplaceAll(s, c.root, "~/mesh")
	s = regexp.MustCompile(`\b`+strconv.Itoa(c.port)+`\b`).ReplaceAllString(s, strconv.Itoa(docsPort))
	s = rfc3339Re.ReplaceAllString(s, "<timestamp>")
	s = logTimeRe.ReplaceAllString(s, "<timestamp>")
	s = durationRe.ReplaceAllString(s, "$1 <duration>")
	s = pollsRe.ReplaceAllString(s, "polls=<n>")
	s = heartbeatAgeRe.ReplaceAllString(s, "heartbeat_age_ms${1}<ms>")
	return []byte(s)
}

// node is one running process of the clustered project.
type node struct {
	name string
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
}

// lockedBuffer is a bytes.Buffer the process writes to while docsgen reads it.
type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startNode(ctx context.Context, dir, bin string, env [][2]string, name string) (*node, error) {
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = cleanEnv(env)
	log := &lockedBuffer{}
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	n := &node{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(n.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			n.stop()
		case <-n.done:
		}
	}()
	return n, nil
}

func (n *node) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the process group and waits for the exit.
func (n *node) kill() {
	if n.exited() {
		return
	}
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.done
}

// stop sends SIGTERM, waits up to five seconds, then SIGKILLs the process group.
func (n *node) stop() {
	if n.exited() {
		return
	}
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
	}
}

// appLines is what the app itself printed: every line that is not a runtime
// log line ([mesh-rt ...]), which carry timings and interleave
// nondeterministically.
func (n *node) appLines() string {
	var out []string
	for _, line := range strings.Split(n.log.String(), "\n") {
		if line != "" && !strings.Contains(line, "[mesh-rt") {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}

func logTails(procs []*node) string {
	var b strings.Builder
	for _, p := range procs {
		lines := strings.Split(strings.TrimRight(p.log.String(), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		fmt.Fprintf(&b, "--- last lines of %s ---\n%s\n", p.name, strings.Join(lines, "\n"))
	}
	return b.String()
}

// freeClusterPort finds a port free on both 127.0.0.1 and ::1, since the
// primary and the standby share one port number on the two loopback
// addresses, as on the pages. The page shows it as the documented 4370.
//
// It never uses 4370 itself, where a reader's own cluster or a concurrent
// run may live. The port is part of the node names, and placement orders the
// members by a hash of their names, so a port is accepted only when it orders
// the two nodes as 4370 does: the captured owner and replica are then what a
// reader running on port 4370 sees.
func freeClusterPort() (int, error) {
	first := func(port int) string {
		p := strconv.Itoa(port)
		m := continuity.CanonicalMembership([]string{primaryName + "@127.0.0.1:" + p, standbyName + "@[::1]:" + p})
		return strings.Split(m[0], "@")[0]
	}
	want := first(docsPort)
	for range 200 {
		port := 20000 + rand.IntN(20000)
		if first(port) != want {
			continue
		}
		a, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(port)))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return port, nil
	}
	return 0, errors.New("no free cluster port on 127.0.0.1 and ::1")
}

// cleanEnv is the environment of the docsgen process without any MESH_*
// variable of the caller's shell, plus extra.
func cleanEnv(extra [][2]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MESH_") {
			env = append(env, kv)
		}
	}
	for _, kv := range extra {
		env = append(env, kv[0]+"="+kv[1])
	}
	return env
}

// listFiles returns the files under dir, slash-separated and sorted.
func listFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	sort.Strings(out)
	return out, err
}

var plainArg = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./\-]+$`)

func shellQuote(s string) string {
	if plainArg.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = shellQuote(a)
	}
	return out
}
