package chaos_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os/exec"
	"strings"
	"testing"
)

// netns is the network the partition soak builds for itself: two
// namespaces, one per node, joined by a veth pair that carries only the
// cluster link, and a veth from the root namespace to each for the clients
// and meshc. Neither namespace has a route to the other through the root
// namespace, so cutting the cluster veth partitions the nodes while clients
// still reach both. Addresses come from 198.18.0.0/15 (benchmarking space)
// and exist only on these interfaces; names carry a random suffix, and
// everything is removed when the test ends, passed or failed.
type netns struct {
	t      *testing.T
	ns     [2]string // namespaces of node a and node b
	link   [2]string // the cluster-link veth end in each namespace
	addr   [2]string // cluster address of each node
	http   [2]string // client-facing address of each node
	cutCmd []string  // the qdisc that drops every packet
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
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	sfx := hex.EncodeToString(b)
	k, _ := rand.Int(rand.Reader, big.NewInt(250))
	oct := k.Int64() + 1 // one /24 of each /16 per run, so parallel runs do not collide
	n := &netns{t: t, ns: [2]string{"mchA" + sfx, "mchB" + sfx}, link: [2]string{"mcA" + sfx, "mcB" + sfx}}
	n.addr = [2]string{fmt.Sprintf("198.19.%d.1", oct), fmt.Sprintf("198.19.%d.2", oct)}
	rootAddr := [2]string{fmt.Sprintf("198.18.%d.1", oct), fmt.Sprintf("198.18.%d.5", oct)}
	n.http = [2]string{fmt.Sprintf("198.18.%d.2", oct), fmt.Sprintf("198.18.%d.6", oct)}
	rootIf := [2]string{"mrA" + sfx, "mrB" + sfx}
	nsIf := [2]string{"mhA" + sfx, "mhB" + sfx}

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
