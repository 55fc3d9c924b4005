package chaos_test

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// netns is the network the partition soak builds for itself: two
// namespaces, one per node, joined by a veth pair that carries only the
// cluster link, and a veth from the root namespace to each for the clients
// and meshc. Neither namespace has a route to the other through the root
// namespace, so cutting the cluster veth partitions the nodes while clients
// still reach both. Addresses come from 198.18.0.0/15 (benchmarking space)
// and exist only on these interfaces; names carry a random suffix, and
// everything is removed when the test ends, passed or failed. Every name
// starts with netnsPrefix and the test process's id in hex
// (mch<pid>-<n>...), so a run killed before its cleanup leaves names that
// the next run removes (removeStale).
type netns struct {
	t      *testing.T
	ns     [2]string // namespaces of node a and node b
	link   [2]string // the cluster-link veth end in each namespace
	addr   [2]string // cluster address of each node
	http   [2]string // client-facing address of each node
	root   [2]string // root-namespace address of each node's client veth
	rootIf [2]string // the client veth end in the root namespace
	nsIf   [2]string // the client veth end in each node's namespace
	sfx    string    // the name suffix of this network
	oct    int64     // the third octet of this network's addresses
	cutCmd []string  // the qdisc that drops every packet
	// arbiter is the root-namespace address the nodes reach an arbiter at,
	// "" until withArbiter.
	arbiter string
}

// netnsPrefix starts the name of every namespace and interface the tests
// create.
const netnsPrefix = "mch"

var netnsSeq atomic.Int64

// removeStale deletes the namespaces and root-namespace links a test
// process that no longer runs left behind: names of the form
// mch<pid in hex>-... whose process is gone.
func removeStale() {
	stale := func(name string) bool {
		rest, ok := strings.CutPrefix(name, netnsPrefix)
		if !ok {
			return false
		}
		hexPid, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.ParseInt(hexPid, 16, 32)
		if !ok || err != nil || int(pid) == os.Getpid() {
			return false
		}
		_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
		return os.IsNotExist(err)
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && stale(f[0]) {
				_ = exec.Command("ip", "netns", "del", f[0]).Run()
			}
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if stale(name) {
				_ = exec.Command("ip", "link", "del", name).Run()
			}
		}
	}
}

// run executes a command and fails the test with its output.
func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("the partition soak needs iproute2 (ip, tc): %v", err)
	}
	removeStale()
	// mch<pid>-<n><role>: at most 3+6+1+2+2 characters, under the 15 an
	// interface name may have.
	sfx := fmt.Sprintf("%s%x-%d", netnsPrefix, os.Getpid(), netnsSeq.Add(1)%100)
	k, _ := rand.Int(rand.Reader, big.NewInt(250))
	oct := k.Int64() + 1 // one /24 of each /16 per run, so parallel runs do not collide
	n := &netns{t: t, sfx: sfx, oct: oct, ns: [2]string{sfx + "nA", sfx + "nB"}, link: [2]string{sfx + "cA", sfx + "cB"}}
	n.addr = [2]string{fmt.Sprintf("198.19.%d.1", oct), fmt.Sprintf("198.19.%d.2", oct)}
	rootAddr := [2]string{fmt.Sprintf("198.18.%d.1", oct), fmt.Sprintf("198.18.%d.5", oct)}
	n.http = [2]string{fmt.Sprintf("198.18.%d.2", oct), fmt.Sprintf("198.18.%d.6", oct)}
	rootIf := [2]string{sfx + "rA", sfx + "rB"}
	nsIf := [2]string{sfx + "hA", sfx + "hB"}
	n.root, n.rootIf, n.nsIf = rootAddr, rootIf, nsIf

	for i := range 2 {
		run(t, "ip", "netns", "add", n.ns[i])
		ns, rif := n.ns[i], rootIf[i]
		t.Cleanup(func() {
			// Deleting a namespace deletes the veth ends in it, and with
			// them their peers and the routes over them.
			_ = exec.Command("ip", "netns", "del", ns).Run()
			_ = exec.Command("ip", "link", "del", rif).Run()
		})
		run(t, "ip", "-n", n.ns[i], "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", "name", n.link[0], "netns", n.ns[0], "type", "veth", "peer", "name", n.link[1], "netns", n.ns[1])
	for i := range 2 {
		run(t, "ip", "-n", n.ns[i], "addr", "add", n.addr[i]+"/30", "dev", n.link[i])
		run(t, "ip", "-n", n.ns[i], "link", "set", n.link[i], "up")
		run(t, "ip", "link", "add", "name", rootIf[i], "type", "veth", "peer", "name", nsIf[i], "netns", n.ns[i])
		run(t, "ip", "addr", "add", rootAddr[i]+"/30", "dev", rootIf[i])
		run(t, "ip", "link", "set", rootIf[i], "up")
		run(t, "ip", "-n", n.ns[i], "addr", "add", n.http[i]+"/30", "dev", nsIf[i])
		run(t, "ip", "-n", n.ns[i], "link", "set", nsIf[i], "up")
		// meshc in the root namespace reaches each node's cluster address
		// through that node's own veth; the namespaces get no route back
		// beyond their /30s, so they cannot reach each other through here.
		run(t, "ip", "route", "add", n.addr[i]+"/32", "via", n.http[i], "dev", rootIf[i])
	}
	// netem where the kernel has it; otherwise a FIFO of length zero, which
	// drops every packet just as silently.
	n.cutCmd = []string{"netem", "loss", "100%"}
	probe := append([]string{"ip", "netns", "exec", n.ns[0], "tc", "qdisc", "add", "dev", n.link[0], "root"}, n.cutCmd...)
	if exec.Command(probe[0], probe[1:]...).Run() != nil {
		n.cutCmd = []string{"pfifo", "limit", "0"}
	} else {
		run(t, "ip", "netns", "exec", n.ns[0], "tc", "qdisc", "del", "dev", n.link[0], "root")
	}
	return n
}

// prefix runs a command inside node i's namespace.
func (n *netns) prefix(i int) []string { return []string{"ip", "netns", "exec", n.ns[i]} }

// cut drops every packet on both ends of the cluster link.
func (n *netns) cut() {
	n.t.Helper()
	for i := range 2 {
		run(n.t, append(append(n.prefix(i), "tc", "qdisc", "add", "dev", n.link[i], "root"), n.cutCmd...)...)
	}
}

// heal removes the cut.
func (n *netns) heal() {
	n.t.Helper()
	for i := range 2 {
		run(n.t, append(n.prefix(i), "tc", "qdisc", "del", "dev", n.link[i], "root")...)
	}
}

// describe says how the partition is made, for the log.
func (n *netns) describe() string {
	return fmt.Sprintf("namespaces %s, %s; cluster link %s <-> %s cut with tc qdisc %s",
		n.ns[0], n.ns[1], n.addr[0], n.addr[1], strings.Join(n.cutCmd, " "))
}

// end is one end of a veth: the namespace it is in ("" for the root
// namespace) and its name.
type end struct{ ns, dev string }

func (e end) cmd(args ...string) []string {
	if e.ns == "" {
		return args
	}
	return append([]string{"ip", "netns", "exec", e.ns}, args...)
}

// drop makes each end drop every packet it sends (a one-sided drop is
// one-way loss); undrop removes that again.
func (n *netns) drop(ends ...end) {
	n.t.Helper()
	for _, e := range ends {
		run(n.t, append(e.cmd("tc", "qdisc", "replace", "dev", e.dev, "root"), n.cutCmd...)...)
	}
}

func (n *netns) undrop(ends ...end) {
	n.t.Helper()
	for _, e := range ends {
		run(n.t, e.cmd("tc", "qdisc", "del", "dev", e.dev, "root")...)
	}
}

// clusterEnd is node i's end of the cluster link; clientEnds are both ends
// of the veth between node i and the root namespace (clients, meshc and
// the arbiter).
func (n *netns) clusterEnd(i int) end { return end{n.ns[i], n.link[i]} }
func (n *netns) clientEnds(i int) []end {
	return []end{{n.ns[i], n.nsIf[i]}, {"", n.rootIf[i]}}
}

// withArbiter gives the root namespace one more address, on a veth pair of
// its own (the kernel may lack the dummy device), for an arbiter both nodes reach through their own client
// veth; it returns that address. Cutting one node from it (cutArbiter)
// leaves its clients and its cluster link alone.
func (n *netns) withArbiter() string {
	n.t.Helper()
	dev := n.sfx + "pg"
	run(n.t, "ip", "link", "add", dev, "type", "veth", "peer", "name", n.sfx+"pq")
	n.t.Cleanup(func() { _ = exec.Command("ip", "link", "del", dev).Run() })
	n.arbiter = fmt.Sprintf("198.18.%d.200", n.oct)
	run(n.t, "ip", "addr", "add", n.arbiter+"/32", "dev", dev)
	run(n.t, "ip", "link", "set", n.sfx+"pq", "up")
	run(n.t, "ip", "link", "set", dev, "up")
	for i := range 2 {
		n.healArbiter(i)
	}
	return n.arbiter
}

// cutArbiter drops, in node i's namespace, every packet to the arbiter
// (a blackhole route); healArbiter routes them through the client veth
// again.
func (n *netns) cutArbiter(i int) {
	n.t.Helper()
	run(n.t, "ip", "-n", n.ns[i], "route", "replace", "blackhole", n.arbiter+"/32")
}

func (n *netns) healArbiter(i int) {
	n.t.Helper()
	run(n.t, "ip", "-n", n.ns[i], "route", "replace", n.arbiter+"/32", "via", n.root[i], "dev", n.nsIf[i])
}
