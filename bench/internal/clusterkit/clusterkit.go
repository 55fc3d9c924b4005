// Package clusterkit starts real testapp node processes on loopback and reads
// their state over the operator protocol, for the benchmark programs under
// bench/. It is a small, non-testing cousin of meshtest: the programs here run
// outside `go test`, so they cannot use a testing.TB.
//
// Every process leads its own process group and is killed (SIGKILL to the
// group) by Cluster.Close; callers defer Close and also close the cluster on
// SIGINT and SIGTERM (CloseOnInterrupt, or their own handler), so nothing
// outlives the benchmark.
package clusterkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/operator"
	"meshgo.dev/mesh/internal/wire"
)

// Cookie is the cluster cookie every benchmark cluster uses.
const Cookie = "bench-cluster-3c9e-Wn6Yt9Bv3Mx7Cz1Pd5R8Kq2"

// StartupKey is the request key of the testapp's declared work at boot.
const StartupKey = continuity.StartupKeyPrefix + "work.Add"

// Node is one testapp process.
type Node struct {
	Name    string // primary@127.0.0.1:P
	Role    string // configured role
	HTTP    string // host:port of the HTTP listener, "" when none
	LogPath string

	target mesh.NodeName
	cmd    *exec.Cmd
	done   chan struct{}
}

// Cluster is a set of node processes started by one benchmark.
type Cluster struct {
	Bin  string // testapp binary
	Dir  string // state dirs and logs
	Port int    // cluster port shared by both nodes
	// App is the binary's name in its log lines ("[testapp] ...") and in
	// the variable it reads its HTTP address from (TESTAPP_HTTP_ADDR):
	// "testapp" when empty, or "routeapp".
	App string

	mu    sync.Mutex // guards nodes
	nodes []*Node
}

// FreePair returns a TCP port that is free on both 127.0.0.1 and [::1] now.
func FreePair() (int, error) {
	for range 200 {
		l4, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l4.Addr().(*net.TCPAddr).Port
		l6, err := net.Listen("tcp6", fmt.Sprintf("[::1]:%d", port))
		l4.Close()
		if err != nil {
			continue
		}
		l6.Close()
		return port, nil
	}
	return 0, errors.New("no port free on both 127.0.0.1 and [::1]")
}

// FreePort returns a free TCP port on host (127.0.0.1 or ::1).
func FreePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Names returns the primary and standby node names at port.
func Names(port int) (primary, standby string) {
	return fmt.Sprintf("primary@127.0.0.1:%d", port), fmt.Sprintf("standby@[::1]:%d", port)
}

// PortOwnedBy returns a cluster port at which the placement owner of
// StartupKey is the primary (owner "primary") or the standby.
func PortOwnedBy(owner string) (int, error) {
	for range 400 {
		p, err := FreePair()
		if err != nil {
			return 0, err
		}
		pri, sby := Names(p)
		want := pri
		if owner == "standby" {
			want = sby
		}
		if continuity.Place(StartupKey, []string{pri, sby}).Owner == want {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no port places %s on the %s", StartupKey, owner)
}

// HTTPAddrs returns a free HTTP address for the primary, on 127.0.0.1, and
// one for the standby, on [::1].
func HTTPAddrs() (primary, standby string, err error) {
	h1, err := FreePort("127.0.0.1")
	if err != nil {
		return "", "", err
	}
	h2, err := FreePort("::1")
	if err != nil {
		return "", "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(h1)), net.JoinHostPort("::1", strconv.Itoa(h2)), nil
}

func (c *Cluster) app() string {
	if c.App == "" {
		return "testapp"
	}
	return c.App
}

// httpEnv is the environment that gives the node HTTP address addr.
func (c *Cluster) httpEnv(addr string) []string {
	if addr == "" {
		return nil
	}
	return []string{strings.ToUpper(c.app()) + "_HTTP_ADDR=" + addr}
}

// CloseOnInterrupt makes SIGINT and SIGTERM close the cluster and exit the
// program with status 130, so that an interrupted benchmark leaves no node
// running.
func (c *Cluster) CloseOnInterrupt() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		c.Close()
		os.Exit(130)
	}()
}

// StartPair starts the primary and, once its runtime has booted in cluster
// mode, the standby, so that the standby's first discovery tick forms the
// pair. It returns when each lists the other as a peer and every node given
// an HTTP address serves HTTP. The addresses and extra are as for Start.
func (c *Cluster) StartPair(primaryHTTP, standbyHTTP string, extra ...string) (pri, sby *Node, err error) {
	logged := func(n *Node, s string) error { return WaitLog(n, "["+c.app()+"] "+s, 10*time.Second) }
	if pri, err = c.Start("primary", primaryHTTP, extra...); err != nil {
		return nil, nil, err
	}
	if err := logged(pri, "runtime bootstrap mode=cluster"); err != nil {
		return nil, nil, err
	}
	if sby, err = c.Start("standby", standbyHTTP, extra...); err != nil {
		return nil, nil, err
	}
	if err := WaitPaired(pri, sby, 30*time.Second); err != nil {
		return nil, nil, fmt.Errorf("cluster did not form: %w", err)
	}
	for _, n := range []*Node{pri, sby} {
		if n.HTTP == "" {
			continue
		}
		if err := logged(n, "HTTP listening on"); err != nil {
			return nil, nil, err
		}
	}
	return pri, sby, nil
}

// Start launches one node: name "primary" on 127.0.0.1 or "standby" on
// [::1], at the cluster port, with the given extra environment (KEY=VALUE).
// httpAddr, when not empty, becomes the App's HTTP address variable
// (TESTAPP_HTTP_ADDR). The environment is complete: nothing is inherited
// except PATH.
func (c *Cluster) Start(role, httpAddr string, extra ...string) (*Node, error) {
	pri, sby := Names(c.Port)
	name := pri
	if role == "standby" {
		name = sby
	}
	short := strings.SplitN(name, "@", 2)[0]
	stateDir := filepath.Join(c.Dir, "state-"+short)
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + c.Dir,
		"MESH_CLUSTER_COOKIE=" + Cookie, "MESH_DISCOVERY_SEED=localhost",
		fmt.Sprintf("MESH_CLUSTER_PORT=%d", c.Port), "MESH_NODE_NAME=" + name,
		"MESH_CONTINUITY_ROLE=" + role, "MESH_STATE_DIR=" + stateDir,
	}
	env = append(append(env, c.httpEnv(httpAddr)...), extra...)
	return c.launch(name, short, role, httpAddr, env)
}

// StartStandalone launches one node without a cookie or any cluster hint, so
// the runtime runs it standalone (no listener, no peer; its Status and
// Record queries do not work). httpAddr and extra are as for Start.
func (c *Cluster) StartStandalone(httpAddr string, extra ...string) (*Node, error) {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.Dir}
	env = append(append(env, c.httpEnv(httpAddr)...), extra...)
	return c.launch("", "standalone", "standalone", httpAddr, env)
}

// launch starts c.Bin with env, its output in a log named after short; name
// "" is a standalone node.
func (c *Cluster) launch(name, short, role, httpAddr string, env []string) (*Node, error) {
	c.mu.Lock()
	run := len(c.nodes) + 1
	c.mu.Unlock()
	logPath := filepath.Join(c.Dir, fmt.Sprintf("%s-%d.log", short, run))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	var target mesh.NodeName
	if name != "" {
		if target, err = mesh.ParseNodeName(name); err != nil {
			return nil, err
		}
	}
	n := &Node{Name: name, Role: role, HTTP: httpAddr, LogPath: logPath, target: target, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(n.done)
	}()
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	return n, nil
}

// Signal sends sig to the node's process group unless it has exited.
func (n *Node) Signal(sig syscall.Signal) {
	select {
	case <-n.done:
	default:
		_ = syscall.Kill(-n.cmd.Process.Pid, sig)
	}
}

// Kill sends SIGKILL to the group and waits (bounded) for the process to be
// reaped.
func (n *Node) Kill() {
	n.Signal(syscall.SIGCONT)
	n.Signal(syscall.SIGKILL)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
	}
}

// Exited reports whether the process has exited.
func (n *Node) Exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// Log returns the node's output so far.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.LogPath)
	return string(b)
}

// Close stops every node the cluster started: SIGTERM first, so that a node
// shuts down gracefully and logs what it reports at the end (the record
// store's counters), then SIGKILL for any still running after 3 s.
func (c *Cluster) Close() {
	c.mu.Lock()
	nodes := append([]*Node(nil), c.nodes...)
	c.mu.Unlock()
	for _, n := range nodes {
		n.Signal(syscall.SIGCONT)
		n.Signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(3 * time.Second)
	defer deadline.Stop()
wait:
	for _, n := range nodes {
		select {
		case <-n.done:
		case <-deadline.C:
			break wait
		}
	}
	for _, n := range nodes {
		n.Kill()
	}
}

// query sends one operator query to n and returns the reply body.
func (n *Node) query(ctx context.Context, q wire.OperatorQuery, timeout time.Duration) ([]byte, error) {
	return operator.Query(ctx, n.target, []byte(Cookie), q, timeout)
}

// Status reads the node's status document.
func (n *Node) Status(ctx context.Context, timeout time.Duration) (operator.Status, error) {
	body, err := n.query(ctx, wire.OperatorQuery{Kind: uint8(operator.KindStatus)}, timeout)
	if err != nil {
		return operator.Status{}, err
	}
	return operator.DecodeStatus(body)
}

// Record reads one continuity record.
func (n *Node) Record(ctx context.Context, key string, timeout time.Duration) (operator.Record, error) {
	body, err := n.query(ctx, wire.OperatorQuery{Kind: uint8(operator.KindContinuityLookup), RequestKey: key}, timeout)
	if err != nil {
		return operator.Record{}, err
	}
	doc, err := operator.DecodeContinuityRecord(body)
	return doc.Record, err
}

// Diagnostics reads the node's diagnostics ring.
func (n *Node) Diagnostics(ctx context.Context, timeout time.Duration) (operator.Diagnostics, error) {
	body, err := n.query(ctx, wire.OperatorQuery{Kind: uint8(operator.KindDiagnostics)}, timeout)
	if err != nil {
		return operator.Diagnostics{}, err
	}
	return operator.DecodeDiagnostics(body)
}

// WaitFor polls cond every interval until it returns nil or timeout passes,
// and returns the last error.
func WaitFor(timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", timeout, err)
		}
		time.Sleep(interval)
	}
}

// WaitPaired waits until both nodes list each other as peers.
func WaitPaired(a, b *Node, timeout time.Duration) error {
	return WaitFor(timeout, 50*time.Millisecond, func() error {
		for _, n := range []*Node{a, b} {
			if n.Exited() {
				return fmt.Errorf("%s exited; log %s", n.Name, n.LogPath)
			}
			st, err := n.Status(context.Background(), time.Second)
			if err != nil {
				return err
			}
			if len(st.Membership.PeerNodes) != 1 {
				return fmt.Errorf("%s peers %v", n.Name, st.Membership.PeerNodes)
			}
		}
		return nil
	})
}

// Pid is the node's process id.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// WaitLog waits until the node's output contains s.
func WaitLog(n *Node, s string, timeout time.Duration) error {
	return WaitFor(timeout, 10*time.Millisecond, func() error {
		switch {
		case strings.Contains(n.Log(), s):
			return nil
		case n.Exited():
			return fmt.Errorf("%s exited without logging %q; log %s", n.Name, s, n.LogPath)
		}
		return fmt.Errorf("%s has not logged %q", n.Name, s)
	})
}
